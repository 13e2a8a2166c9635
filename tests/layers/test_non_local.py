import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.non_local import NonLocalBlock
from tests.helpers import check_layer, random_inputs, randomize_weights

X = random_inputs((2, 6, 6, 16))

# Biases that by design receive no gradient (see the two tests below): phi's cancels in the
# softmax over the keys; g's and out_conv's are constant over positions and cancelled by the
# batch mean of the output BatchNormalization in training mode.
GRADIENT_FREE_BIASES = ("phi/bias", "g/bias", "out_conv/bias")


def numpy(x):
    return ops.convert_to_numpy(x)


def conv1x1(layer, x):
    return x @ numpy(layer.kernel)[0, 0] + numpy(layer.bias)


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def max_pool_2x2(x):
    b, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def reference_non_local(layer, x):
    """The block's formula in NumPy, head by head, BatchNormalization in inference mode."""
    b, h, w, c = x.shape
    heads, d = layer.num_heads, layer.head_channels
    theta, phi, g = (conv1x1(conv, x) for conv in (layer.theta, layer.phi, layer.g))
    if layer.subsample:  # 2x2 max-pooling, stride 2
        phi, g = (max_pool_2x2(t) for t in (phi, g))
    theta, phi, g = (t.reshape(b, -1, layer.inter_channels) for t in (theta, phi, g))
    y, maps = [], []
    for head in range(heads):
        part = slice(head * d, (head + 1) * d)
        logits = theta[..., part] @ phi[..., part].transpose(0, 2, 1)
        attention = softmax(logits / np.sqrt(d) if layer.scale else logits)
        maps.append(attention)
        y.append(attention @ g[..., part])
    y = np.concatenate(y, axis=-1).reshape(b, h, w, layer.inter_channels)
    bn = layer.out_bn
    z = conv1x1(layer.out_conv, y)
    z = (z - numpy(bn.moving_mean)) / np.sqrt(numpy(bn.moving_variance) + bn.epsilon) * numpy(bn.gamma) + numpy(bn.beta)
    return z + x, np.stack(maps, axis=1)


@pytest.mark.parametrize(
    "kwargs, attention_shape",
    [({}, (2, 1, 36, 36)), ({"num_heads": 2, "subsample": True}, (2, 2, 36, 9))],
    ids=["one_head", "two_heads_subsampled"],
)
def test_passes_the_full_layer_checks(kwargs, attention_shape, tmp_path):
    check_layer(
        NonLocalBlock(16, return_attention=True, **kwargs),
        X,
        tmp_path,
        [(2, 6, 6, 16), attention_shape],
        biases_before_batchnorm=GRADIENT_FREE_BIASES,
    )


def test_the_key_bias_cancels_in_the_softmax_over_the_keys():
    # It shifts every logit of a query's row by the same theta . b: kept only for parity
    # with the official code's parameters.
    layer = NonLocalBlock(16, num_heads=2, subsample=True, return_attention=True)
    layer(X)
    randomize_weights(layer)
    before = [numpy(t) for t in layer(X, training=False)]
    layer.phi.bias.assign(np.full((8,), 5.0, "float32"))
    for a, b in zip(before, (numpy(t) for t in layer(X, training=False))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_value_and_output_biases_cancel_in_the_batchnorm_in_training_mode():
    layer = NonLocalBlock(16)
    layer(X)
    randomize_weights(layer, scale=0.5)
    before = numpy(layer(X, training=True))
    layer.g.bias.assign(np.full((8,), 0.5, "float32"))
    layer.out_conv.bias.assign(np.full((16,), -0.5, "float32"))
    np.testing.assert_allclose(numpy(layer(X, training=True)), before, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("training", [False, True])
def test_is_the_identity_at_initialisation_because_the_batchnorm_gamma_is_zero(training):
    layer = NonLocalBlock(16, num_heads=2)
    np.testing.assert_array_equal(numpy(layer(X, training=training)), X)
    np.testing.assert_array_equal(numpy(layer.out_bn.gamma), 0.0)


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_attention_rows_are_distributions_over_the_key_positions(num_heads):
    _, attention = NonLocalBlock(16, num_heads=num_heads, return_attention=True)(X)
    attention = numpy(attention)
    assert attention.shape == (2, num_heads, 36, 36)
    assert np.all(attention >= 0)
    np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-5)


def test_subsampling_max_pools_the_keys_to_a_quarter_of_the_positions():
    _, attention = NonLocalBlock(16, subsample=True, return_attention=True)(random_inputs((2, 8, 6, 16)))
    assert tuple(attention.shape) == (2, 1, 48, 12)
    np.testing.assert_allclose(numpy(attention).sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_heads": 2}, {"num_heads": 4, "subsample": True}, {"scale": False, "inter_channels": 4}],
    ids=["paper", "two_heads", "four_heads_subsampled", "unscaled"],
)
def test_equals_a_numpy_reference_of_the_embedded_gaussian_formula(kwargs):
    layer = NonLocalBlock(16, return_attention=True, **kwargs)
    layer(X)
    randomize_weights(layer, scale=0.3)
    out, attention = layer(X, training=False)
    expected_out, expected_attention = reference_non_local(layer, X)
    np.testing.assert_allclose(numpy(attention), expected_attention, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(numpy(out), expected_out, rtol=1e-4, atol=1e-5)


def test_works_on_feature_maps_of_any_size_in_one_model():
    inputs = keras.Input((None, None, 16))
    model = keras.Model(inputs, NonLocalBlock(16, subsample=True, return_attention=True)(inputs))
    for shape, keys in [((2, 5, 7, 16), 2 * 3), ((1, 4, 4, 16), 2 * 2)]:
        out, attention = model.predict_on_batch(random_inputs(shape))
        assert out.shape == shape and attention.shape == (shape[0], 1, shape[1] * shape[2], keys)


def test_inter_channels_default_to_half_the_channels_and_must_split_into_the_heads():
    assert NonLocalBlock(16).inter_channels == 8
    assert NonLocalBlock(16, num_heads=4).head_channels == 2
    with pytest.raises(ValueError, match="num_heads \\(3\\) must divide inter_channels \\(8\\)"):
        NonLocalBlock(16, num_heads=3)


def test_parameter_count_is_four_biased_1x1_convolutions_and_a_batchnorm():
    layer = NonLocalBlock(16)
    layer.build((None, 6, 6, 16))
    assert layer.count_params() == 3 * (16 * 8 + 8) + (8 * 16 + 16) + 4 * 16


def test_macs_count_the_projections_and_the_attention_products():
    n, c, i = 36, 16, 8
    assert NonLocalBlock(16).count_macs((None, 6, 6, 16)) == 3 * n * c * i + 2 * n * n * i + n * i * c
    assert NonLocalBlock(16, subsample=True).count_macs((None, 6, 6, 16)) == 3 * n * c * i + 2 * n * 9 * i + n * i * c


def test_rejects_a_channel_count_it_was_not_made_for():
    with pytest.raises(ValueError, match="created for 32 channels; got input with 16"):
        NonLocalBlock(32)(X)


def test_mixed_precision_output_is_float16_finite_and_the_attention_still_sums_to_one():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = NonLocalBlock(16, num_heads=2, return_attention=True)
    layer(X)
    randomize_weights(layer, scale=1.0)
    out, attention = layer(20.0 * X, training=False)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert np.all(np.isfinite(numpy(out)))
    np.testing.assert_allclose(numpy(attention).astype("float32").sum(-1), 1.0, atol=1e-2)
