"""ECA and CBAM: the gates the papers define, in both published layouts, on every backend."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from attention_zoo.layers import CBAM, ChannelAttention, EfficientChannelAttention, SpatialAttention, SqueezeExcite
from attention_zoo.layers.eca import adaptive_kernel_size
from tests.helpers import check_layer, random_inputs, randomize_weights, wrap


def numpy(x):
    return ops.convert_to_numpy(x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("channels, expected", [(16, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_kernel_size_follows_the_papers_formula(channels, expected):
    # k = |(log2 C + 1) / 2| made odd.
    assert adaptive_kernel_size(channels) == expected
    assert EfficientChannelAttention(channels).kernel_size == expected


def test_eca_is_a_one_dimensional_convolution_across_channels(tmp_path):
    x = random_inputs((2, 5, 5, 12))
    model = check_layer(EfficientChannelAttention(12, kernel_size=3, return_attention=True), x, tmp_path, [(2, 5, 5, 12), (2, 12)])
    layer = model.layers[-1]
    kernel = numpy(layer.kernel)[:, 0, 0]
    pooled = np.pad(x.mean(axis=(1, 2)), ((0, 0), (1, 1)))
    expected_gates = sigmoid(sum(kernel[i] * pooled[:, i : i + 12] for i in range(3)))
    attended, gates = model(x)
    np.testing.assert_allclose(numpy(gates), expected_gates, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(attended), x * expected_gates[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_eca_rejects_an_even_kernel():
    with pytest.raises(ValueError, match="odd kernel_size"):
        EfficientChannelAttention(64, kernel_size=4)


def test_cbam_channel_gate_is_a_shared_mlp_on_average_and_max_pools(tmp_path):
    x = random_inputs((2, 6, 6, 32))
    model = check_layer(ChannelAttention(32, reduction=4, return_attention=True), x, tmp_path, [(2, 6, 6, 32), (2, 32)])
    layer = model.layers[-1]
    w1, b1 = numpy(layer.reduce.kernel), numpy(layer.reduce.bias)
    w2, b2 = numpy(layer.expand.kernel), numpy(layer.expand.bias)

    def mlp(v):
        return np.maximum(v @ w1 + b1, 0) @ w2 + b2

    expected = sigmoid(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))
    np.testing.assert_allclose(numpy(model(x)[1]), expected, rtol=1e-5, atol=1e-6)


def test_cbam_spatial_gate_starts_at_one_half_like_the_official_code():
    x = random_inputs((1, 6, 6, 8))
    _, gates = SpatialAttention(return_attention=True)(x, training=False)
    np.testing.assert_allclose(numpy(gates), 0.5, atol=1e-6)


def spatial_gate_from_its_sublayers(layer, x, training):
    """The gate as the paper writes it: conv over [channel max, channel mean], BatchNorm, sigmoid."""
    x = ops.convert_to_tensor(x)
    pooled = ops.concatenate([ops.max(x, axis=-1, keepdims=True), ops.mean(x, axis=-1, keepdims=True)], axis=-1)
    return numpy(ops.sigmoid(layer.bn(layer.conv(pooled), training=training)))


def test_cbam_spatial_gate_at_inference_is_conv_then_batchnorm_with_the_moving_statistics():
    x = random_inputs((2, 9, 9, 8))
    layer = SpatialAttention(return_attention=True)
    layer(x)
    randomize_weights(layer, seed=4, scale=1.0)
    expected = spatial_gate_from_its_sublayers(layer, x, training=False)
    np.testing.assert_allclose(numpy(layer(x, training=False)[1]), expected, rtol=1e-5, atol=1e-6)
    # Frozen, it normalises with the moving statistics in training too, as Keras' BatchNormalization does.
    layer.trainable = False
    np.testing.assert_allclose(numpy(layer(x, training=True)[1]), expected, rtol=1e-5, atol=1e-6)


def test_cbam_spatial_gate_in_training_uses_batch_statistics_and_updates_the_moving_ones():
    x = random_inputs((4, 9, 9, 8))
    layer, reference = SpatialAttention(return_attention=True), SpatialAttention(return_attention=True)
    layer(x), reference(x)
    randomize_weights(layer, seed=5, scale=1.0)
    reference.set_weights(layer.get_weights())
    gates = numpy(layer(x, training=True)[1])
    expected = spatial_gate_from_its_sublayers(reference, x, training=True)
    np.testing.assert_allclose(gates, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(gates, numpy(layer(x, training=False)[1]), atol=1e-3)
    np.testing.assert_allclose(numpy(layer.bn.moving_mean), numpy(reference.bn.moving_mean), rtol=1e-5, atol=1e-7)


def test_cbam_pool_orders_differ_only_by_the_order_of_the_conv_kernels_input_channels():
    x = random_inputs((2, 6, 6, 8))
    official = SpatialAttention(pool_order="max_mean", return_attention=True)
    timm = SpatialAttention(pool_order="mean_max", bn_gamma_init="ones", return_attention=True)
    official(x), timm(x)
    randomize_weights(wrap(official, x), seed=3)
    weights = official.get_weights()
    weights[0] = weights[0][:, :, ::-1, :]
    timm.set_weights(weights)
    np.testing.assert_allclose(numpy(official(x)[1]), numpy(timm(x)[1]), rtol=1e-5, atol=1e-6)


def test_cbam_applies_the_channel_gate_then_the_spatial_gate_on_the_refined_map(tmp_path):
    x = random_inputs((2, 6, 6, 32))
    model = check_layer(
        CBAM(32, reduction=8, return_attention=True), x, tmp_path, [(2, 6, 6, 32), (2, 32), (2, 6, 6, 1)]
    )
    attended, maps = model(x)
    refined = x * numpy(maps["channel"])[:, None, None, :]
    np.testing.assert_allclose(numpy(attended), refined * numpy(maps["spatial"]), rtol=1e-5, atol=1e-6)


def test_cbam_parameter_counts_for_the_official_and_timm_layouts():
    official, timm = CBAM(256), CBAM(256, mlp_bias=False)
    official.build((None, 7, 7, 256)), timm.build((None, 7, 7, 256))
    spatial = 2 * 49 + 2 + 2  # 7x7 conv over two maps, BN gamma/beta, BN moving statistics
    assert official.count_params() == 256 * 16 + 16 + 16 * 256 + 256 + spatial
    assert timm.count_params() == 2 * 256 * 16 + spatial


@settings(max_examples=8, deadline=None)
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    channels=st.sampled_from([4, 16, 48]),
    kind=st.sampled_from(["se", "eca", "cbam"]),
)
def test_channel_gates_keep_any_shape_and_stay_within_zero_and_one(batch, height, width, channels, kind):
    layer = {
        "se": lambda: SqueezeExcite(channels, reduction=4, return_attention=True),
        "eca": lambda: EfficientChannelAttention(channels, return_attention=True),
        "cbam": lambda: CBAM(channels, reduction=4, return_attention=True),
    }[kind]()
    x = random_inputs((batch, height, width, channels), seed=batch * height * width)
    attended, gates = layer(x)
    channel_gates = numpy(gates["channel"] if kind == "cbam" else gates)
    assert attended.shape == x.shape
    assert channel_gates.shape == (batch, channels)
    assert np.all((channel_gates >= 0) & (channel_gates <= 1))
