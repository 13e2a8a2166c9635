import numpy as np
import pytest
from keras import ops

from attention_zoo.layers import SqueezeExcite
from tests.helpers import check_layer, random_inputs


def test_gates_every_channel_and_passes_the_full_layer_checks(tmp_path):
    x = random_inputs((2, 8, 8, 32))
    model = check_layer(SqueezeExcite(32, reduction=4, return_attention=True), x, tmp_path, [(2, 8, 8, 32), (2, 32)])
    attended, gates = model(x)
    gates = ops.convert_to_numpy(gates)
    assert np.all((gates > 0) & (gates < 1))
    np.testing.assert_allclose(ops.convert_to_numpy(attended), x * gates[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_bottleneck_width_follows_the_paper_or_timm():
    assert SqueezeExcite(64).hidden_channels == 4  # official code: 64 // 16
    assert SqueezeExcite(64, rd_divisor=8).hidden_channels == 8  # timm seresnet18 first stage
    assert SqueezeExcite(256, rd_channels=10).hidden_channels == 10


def test_parameter_count_is_two_fully_connected_layers_with_bias():
    layer = SqueezeExcite(256)
    layer.build((None, 7, 7, 256))
    assert layer.count_params() == 256 * 16 + 16 + 16 * 256 + 256


def test_rejects_a_channel_count_it_was_not_made_for():
    with pytest.raises(ValueError, match="created for 32 channels; got input with 16"):
        SqueezeExcite(32)(random_inputs((1, 4, 4, 16)))
