"""BAM and Selective Kernel: structure, parameter counts and the strided dilated path."""

import numpy as np
import pytest
from keras import ops

from attention_zoo.layers import BottleneckAttention, SelectiveKernel, create_attention, list_attention
from tests.helpers import check_layer, random_inputs, randomize_weights, wrap


def numpy(x):
    return ops.convert_to_numpy(x)


def test_bam_output_is_the_input_scaled_by_one_plus_the_gate(tmp_path):
    x = random_inputs((2, 8, 8, 32))
    model = check_layer(
        BottleneckAttention(32, reduction=4, return_attention=True),
        x,
        tmp_path,
        [(2, 8, 8, 32), (2, 32), (2, 8, 8, 1), (2, 8, 8, 1)],
        # The official module has biased convs/FCs before its BatchNorms; kept to load its weights.
        biases_before_batchnorm=("channel_reduce/bias", "spatial_reduce/bias", "spatial_conv0/bias", "spatial_conv1/bias"),
    )
    attended, maps = model(x)
    channel, spatial = numpy(maps["channel"]), numpy(maps["spatial"])
    gate = 1 / (1 + np.exp(-(channel[:, None, None, :] * spatial)))
    np.testing.assert_allclose(numpy(attended), x * (1 + gate), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy(maps["gate"]), gate.mean(axis=-1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_bam_sum_combination_reproduces_the_paper():
    x = random_inputs((1, 8, 8, 32))
    layer = BottleneckAttention(32, reduction=4, combine="sum", return_attention=True)
    attended, maps = layer(x, training=False)
    logits = numpy(maps["channel"])[:, None, None, :] + numpy(maps["spatial"])
    np.testing.assert_allclose(numpy(attended), x * (1 + 1 / (1 + np.exp(-logits))), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="combine must be one of"):
        BottleneckAttention(32, combine="max")


def test_bam_parameter_count_matches_the_official_module():
    layer = BottleneckAttention(256)
    layer.build((None, 56, 56, 256))
    statistics = 2 * 16 * 4  # moving mean/variance of the four BatchNorms over 16 channels
    assert layer.count_params() - statistics == 17_361


def sk_pair(dilations=(1, 2), **options):
    """The same SK unit at stride 1 and stride 2, with equal random weights."""
    x = random_inputs((2, 10, 10, 16))
    dense, strided = (SelectiveKernel(16, dilations=dilations, strides=s, **options) for s in (1, 2))
    dense(x), strided(x)
    randomize_weights(wrap(dense, x), seed=5)
    strided.set_weights(dense.get_weights())
    return x, dense, strided


@pytest.mark.parametrize("dilations", [(1, 2), (1, 3)])
def test_sk_strided_paths_equal_dense_paths_subsampled_like_pytorch(dilations):
    x, dense, strided = sk_pair(dilations=dilations, groups=4)
    for index in range(2):
        expected = numpy(dense._run_path(index, x, False))[:, ::2, ::2, :]
        np.testing.assert_allclose(numpy(strided._run_path(index, x, False)), expected, rtol=1e-5, atol=1e-5)


def test_sk_fuses_paths_with_softmax_weights_over_paths(tmp_path):
    x = random_inputs((2, 9, 9, 16))
    model = check_layer(
        SelectiveKernel(32, strides=2, groups=4, rd_channels=8, return_attention=True),
        x,
        tmp_path,
        [(2, 5, 5, 32), (2, 2, 32)],
    )
    layer = model.layers[-1]
    attended, weights = model(x)
    weights = numpy(weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    paths = [numpy(layer._run_path(i, x, False)) for i in range(2)]
    expected = sum(paths[i] * weights[:, i, None, None, :] for i in range(2))
    np.testing.assert_allclose(numpy(attended), expected, rtol=1e-4, atol=1e-5)


def test_sk_split_input_gives_each_path_half_the_channels(tmp_path):
    x = random_inputs((2, 6, 6, 16))
    model = check_layer(SelectiveKernel(16, split_input=True, return_attention=True), x, tmp_path, [(2, 6, 6, 16), (2, 2, 16)])
    assert [tuple(path.conv.kernel.shape) for path in model.layers[-1].paths] == [(3, 3, 8, 16), (3, 3, 8, 16)]


def test_sk_attention_width_is_the_papers_max_of_c_over_16_and_32():
    assert [SelectiveKernel(c, rd_divisor=32).attention_channels for c in (128, 256, 512, 1024)] == [32, 32, 32, 64]


def test_the_factory_names_every_gate_and_suggests_close_names():
    assert {"se", "eca", "cbam", "bam", "channel", "spatial", "non_local", "danet_position", "danet_channel"} <= set(
        list_attention()
    )
    assert isinstance(create_attention("bam", 64), BottleneckAttention)
    assert create_attention(None, 64) is None
    with pytest.raises(ValueError, match="Did you mean cbam"):
        create_attention("cbma", 64)
