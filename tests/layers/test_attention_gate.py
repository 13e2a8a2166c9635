"""Attention U-Net's additive grid attention gate: the official formula, on every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.attention_gate import AttentionGate
from attention_zoo.utils.counting import count_macs
from tests.helpers import check_layer, random_inputs, randomize_weights, wrap

pytestmark = pytest.mark.every_backend


def numpy(x):
    return ops.convert_to_numpy(x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _source_indices(in_size, out_size):
    """PyTorch's bilinear source coordinates with align_corners=False (half-pixel centres,
    negative coordinates clamped to 0, the upper neighbour clamped to the border)."""
    src = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(int), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, src - low


def bilinear(x, height, width):
    """NumPy bilinear resize of an NHWC array, PyTorch `interpolate(align_corners=False)`."""
    top, bottom, dy = _source_indices(x.shape[1], height)
    left, right, dx = _source_indices(x.shape[2], width)
    dy, dx = dy[None, :, None, None], dx[None, None, :, None]
    rows = x[:, top] * (1 - dy) + x[:, bottom] * dy
    return rows[:, :, left] * (1 - dx) + rows[:, :, right] * dx


def conv1x1(x, kernel, bias=None):
    y = np.einsum("bhwc,cd->bhwd", x, kernel[0, 0])
    return y if bias is None else y + bias


def strided_conv(x, kernel, factor):
    """kernel = stride = factor, no padding: a sum over non-overlapping factor x factor blocks."""
    batch, height, width, channels = x.shape
    rows, cols = height // factor, width // factor
    blocks = x[:, : rows * factor, : cols * factor].reshape(batch, rows, factor, cols, factor, channels)
    return np.einsum("bifjgc,fgcd->bijd", blocks, kernel)


def reference_gate(layer, skip, gating):
    """The official `_GridAttentionBlockND._concatenation` in NumPy, BatchNorm in inference."""
    theta_x = strided_conv(skip, numpy(layer.theta.kernel), layer.sub_sample_factor)
    phi_g = conv1x1(gating, numpy(layer.phi.kernel), numpy(layer.phi.bias))
    phi_g = bilinear(phi_g, *theta_x.shape[1:3])
    psi = conv1x1(np.maximum(theta_x + phi_g, 0), numpy(layer.psi.kernel), numpy(layer.psi.bias))
    coefficients = bilinear(sigmoid(psi), *skip.shape[1:3])
    y = conv1x1(skip * coefficients, numpy(layer.out_conv.kernel), numpy(layer.out_conv.bias))
    bn = layer.out_bn
    normed = (y - numpy(bn.moving_mean)) / np.sqrt(numpy(bn.moving_variance) + bn.epsilon)
    return normed * numpy(bn.gamma) + numpy(bn.beta), coefficients


def test_numpy_bilinear_reference_is_pytorch_align_corners_false_and_keras_resize_matches_it():
    # torch.nn.functional.interpolate([[1, 2], [3, 4]], scale_factor=2, mode="bilinear",
    # align_corners=False), as PyTorch documents it.
    torch_output = np.array(
        [[1.0, 1.25, 1.75, 2.0], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3.0, 3.25, 3.75, 4.0]]
    )
    x = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")[None, :, :, None]
    np.testing.assert_allclose(bilinear(x, 4, 4)[0, :, :, 0], torch_output)
    odd = random_inputs((2, 3, 4, 5), seed=1)
    for size in [(7, 9), (8, 8), (2, 3)]:
        keras_resized = numpy(ops.image.resize(odd, size, interpolation="bilinear"))
        np.testing.assert_allclose(keras_resized, bilinear(odd, *size), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "skip_shape, gating_shape",
    [
        ((2, 8, 8, 6), (2, 4, 4, 10)),  # the U-Net case: gating already on theta's grid
        ((2, 8, 8, 6), (2, 2, 2, 10)),  # a coarser gating signal, resized to theta's grid
        ((2, 7, 9, 6), (2, 3, 4, 10)),  # odd skip: theta floors, the gate resamples back
    ],
)
def test_gate_computes_the_official_additive_attention_formula(skip_shape, gating_shape):
    skip, gating = random_inputs(skip_shape, seed=2), random_inputs(gating_shape, seed=3)
    layer = AttentionGate(6, gating_channels=10, inter_channels=4, return_attention=True)
    model = wrap(layer, [skip, gating])
    randomize_weights(model, seed=4, scale=0.5)
    attended, coefficients = model([skip, gating], training=False)
    expected_attended, expected_coefficients = reference_gate(layer, skip, gating)
    np.testing.assert_allclose(numpy(coefficients), expected_coefficients, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(attended), expected_attended, rtol=1e-4, atol=1e-5)


def test_gate_meets_the_layer_contract(tmp_path):
    skip, gating = random_inputs((2, 8, 8, 6)), random_inputs((2, 4, 4, 10), seed=1)
    check_layer(
        AttentionGate(6, gating_channels=10, return_attention=True),
        [skip, gating],
        tmp_path,
        expected_shapes=[(2, 8, 8, 6), (2, 8, 8, 1)],
        # W's bias feeds the output BatchNorm: in training mode the batch mean cancels it.
        biases_before_batchnorm=("out_conv/bias",),
    )


def test_gate_returns_only_the_gated_skip_without_return_attention():
    skip, gating = random_inputs((1, 8, 8, 6)), random_inputs((1, 4, 4, 3), seed=1)
    output = AttentionGate(6)([skip, gating])
    assert tuple(output.shape) == (1, 8, 8, 6)


def test_gate_coefficients_lie_strictly_between_zero_and_one_on_the_skips_grid():
    skip, gating = random_inputs((2, 16, 12, 8), seed=5), random_inputs((2, 8, 6, 16), seed=6)
    layer = AttentionGate(8, return_attention=True)
    randomize_weights(wrap(layer, [skip, gating]), seed=7, scale=0.3)
    _, coefficients = layer([skip, gating], training=False)
    coefficients = numpy(coefficients)
    assert coefficients.shape == (2, 16, 12, 1)
    assert np.all((coefficients > 0) & (coefficients < 1))
    assert coefficients.std() > 1e-3  # a spatial map, not a constant


def test_gate_weights_follow_the_official_layer():
    skip, gating = random_inputs((1, 8, 8, 12)), random_inputs((1, 4, 4, 20), seed=1)
    layer = AttentionGate(12, gating_channels=20, sub_sample_factor=2)
    layer([skip, gating])
    assert layer.inter_channels == 6  # in_channels // 2 by default
    assert AttentionGate(1).inter_channels == 1
    assert tuple(layer.theta.kernel.shape) == (2, 2, 12, 6)
    assert layer.theta.strides == (2, 2) and layer.theta.padding == "valid" and not layer.theta.use_bias
    assert tuple(layer.phi.kernel.shape) == (1, 1, 20, 6) and layer.phi.use_bias
    assert tuple(layer.psi.kernel.shape) == (1, 1, 6, 1) and layer.psi.use_bias
    assert tuple(layer.out_conv.kernel.shape) == (1, 1, 12, 12) and layer.out_conv.use_bias
    assert layer.out_bn.epsilon == 1e-5 and layer.out_bn.momentum == 0.9


def test_gate_counts_the_macs_of_its_four_convolutions():
    skip, gating = keras.Input((16, 16, 8)), keras.Input((8, 8, 12))
    layer = AttentionGate(8, inter_channels=4)
    model = keras.Model([skip, gating], layer([skip, gating]))
    theta = 8 * 8 * (2 * 2 * 8) * 4
    phi = 8 * 8 * 12 * 4
    psi = 8 * 8 * 4
    out = 16 * 16 * 8 * 8
    assert layer.count_macs((None, 16, 16, 8)) == theta + phi + psi + out
    assert layer.count_macs([(None, 16, 16, 8), (None, 4, 4, 12)]) == theta + 4 * 4 * 12 * 4 + psi + out
    assert count_macs(model) == theta + phi + psi + out


def test_gate_rejects_wrong_inputs_with_clear_errors():
    skip, gating = random_inputs((1, 8, 8, 6)), random_inputs((1, 4, 4, 10))
    with pytest.raises(ValueError, match="created for 4 channels"):
        AttentionGate(4)([skip, gating])
    with pytest.raises(ValueError, match="gating signal of 16 channels"):
        AttentionGate(6, gating_channels=16)([skip, gating])
    with pytest.raises(ValueError, match=r"two inputs \[skip, gating\]"):
        AttentionGate(6)(skip)
    with pytest.raises(ValueError, match="sub_sample_factor"):
        AttentionGate(6, sub_sample_factor=0)
