import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import ops

from attention_zoo.layers.danet import ChannelSelfAttention, PositionAttention
from tests.helpers import check_layer, random_inputs, randomize_weights, wrap

X = random_inputs((2, 6, 6, 16))

# The key projection's bias cancels in the softmax over the keys (it adds the same q . b to a
# whole row of the energy), so by design it gets no gradient; see the test below.
KEY_BIAS = ("key_conv/bias",)


def numpy(x):
    return ops.convert_to_numpy(x)


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def conv1x1(layer, x):
    return x @ numpy(layer.kernel)[0, 0] + numpy(layer.bias)


def reference_pam(layer, x, gamma):
    """PAM_Module.forward of the official code in NumPy, on (B, C, N) matrices as written there."""
    b, h, w, c = x.shape
    channels_first = lambda t: t.reshape(b, h * w, -1).transpose(0, 2, 1)  # noqa: E731
    query = channels_first(conv1x1(layer.query_conv, x))  # (B, C', N)
    key = channels_first(conv1x1(layer.key_conv, x))
    value = channels_first(conv1x1(layer.value_conv, x))  # (B, C, N)
    energy = query.transpose(0, 2, 1) @ key  # (B, N, N)
    attention = softmax(energy)
    out = value @ attention.transpose(0, 2, 1)  # (B, C, N)
    return gamma * out.transpose(0, 2, 1).reshape(x.shape) + x, attention


def reference_cam(x, gamma):
    """CAM_Module.forward of the official code in NumPy."""
    b, h, w, c = x.shape
    features = x.reshape(b, h * w, c).transpose(0, 2, 1).astype("float64")  # (B, C, N)
    energy = features @ features.transpose(0, 2, 1)  # (B, C, C)
    energy_new = energy.max(-1, keepdims=True) - energy
    attention = softmax(energy_new)
    out = attention @ features  # (B, C, N)
    return gamma * out.transpose(0, 2, 1).reshape(x.shape) + x, attention


# Position attention (PAM)


def test_position_attention_passes_the_full_layer_checks(tmp_path):
    layer = PositionAttention(16, return_attention=True)
    check_layer(layer, X, tmp_path, [(2, 6, 6, 16), (2, 36, 36)], biases_before_batchnorm=KEY_BIAS)


def test_position_attention_is_the_identity_at_initialisation():
    layer = PositionAttention(16, return_attention=True)
    out, attention = layer(X)
    np.testing.assert_array_equal(numpy(layer.gamma), [0.0])
    np.testing.assert_array_equal(numpy(out), X)
    np.testing.assert_allclose(numpy(attention).sum(-1), 1.0, rtol=1e-5)


def test_position_attention_with_gamma_one_equals_the_official_formula():
    layer = PositionAttention(16, return_attention=True)
    layer(X)
    randomize_weights(layer, scale=0.5)
    layer.gamma.assign([1.0])
    out, attention = layer(X)
    expected_out, expected_attention = reference_pam(layer, X, gamma=1.0)
    np.testing.assert_allclose(numpy(attention), expected_attention, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(numpy(out), expected_out, rtol=1e-4, atol=1e-5)


def test_position_attention_projects_queries_and_keys_to_an_eighth_of_the_channels():
    layer = PositionAttention(64)
    layer.build((None, 4, 4, 64))
    assert layer.key_channels == 8
    assert layer.count_params() == 2 * (64 * 8 + 8) + (64 * 64 + 64) + 1


def test_position_attention_key_bias_cancels_in_the_softmax():
    layer = PositionAttention(16, return_attention=True)
    layer(X)
    randomize_weights(layer)
    before = [numpy(t) for t in layer(X)]
    layer.key_conv.bias.assign(np.full((2,), 5.0, "float32"))
    for a, b in zip(before, (numpy(t) for t in layer(X))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_position_attention_macs_count_the_convolutions_and_both_attention_products():
    n, c, r = 36, 16, 2
    assert PositionAttention(16).count_macs((None, 6, 6, 16)) == 2 * n * c * r + n * c * c + n * n * r + n * n * c


# Channel attention (CAM)


def test_channel_attention_passes_the_full_layer_checks(tmp_path):
    check_layer(ChannelSelfAttention(16, return_attention=True), X, tmp_path, [(2, 6, 6, 16), (2, 16, 16)])


def test_channel_attention_is_the_identity_at_initialisation():
    layer = ChannelSelfAttention(return_attention=True)
    out, attention = layer(X)
    np.testing.assert_array_equal(numpy(layer.gamma), [0.0])
    np.testing.assert_array_equal(numpy(out), X)
    np.testing.assert_allclose(numpy(attention).sum(-1), 1.0, rtol=1e-5)


def test_channel_attention_with_gamma_one_equals_the_official_formula():
    layer = ChannelSelfAttention(return_attention=True)
    layer(X)
    layer.gamma.assign([1.0])
    out, attention = layer(X)
    expected_out, expected_attention = reference_cam(X, gamma=1.0)
    np.testing.assert_allclose(numpy(attention), expected_attention, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(numpy(out), expected_out, rtol=1e-4, atol=1e-5)


def test_channel_attention_has_only_its_gamma_and_takes_any_channel_count_unless_told():
    layer = ChannelSelfAttention()
    assert tuple(layer(random_inputs((1, 3, 3, 5))).shape) == (1, 3, 3, 5)
    assert [w.path.rsplit("/", 1)[-1] for w in layer.weights] == ["gamma"]
    with pytest.raises(ValueError, match="created for 8 channels; got input with 16"):
        ChannelSelfAttention(8)(X)


def test_channel_attention_macs_are_the_two_channel_by_channel_products():
    assert ChannelSelfAttention().count_macs((None, 6, 6, 16)) == 2 * 36 * 16 * 16


def test_channel_attention_energies_beyond_the_float16_range_stay_finite_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    x = 60.0 * X  # energies up to 36 * 60^2 = 129600 > 65504
    layer = ChannelSelfAttention(return_attention=True)
    layer(x)
    layer.gamma.assign([1.0])
    out, attention = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert np.all(np.isfinite(numpy(out))) and np.all(np.isfinite(numpy(attention)))
    expected_out, _ = reference_cam(x, gamma=1.0)
    np.testing.assert_allclose(numpy(out).astype("float32"), expected_out, rtol=1e-2, atol=0.5)


def test_position_attention_under_mixed_precision_is_float16_and_finite():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = PositionAttention(16, return_attention=True)
    layer(X)
    randomize_weights(layer, scale=1.0)
    out, attention = layer(10.0 * X)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert np.all(np.isfinite(numpy(out)))
    np.testing.assert_allclose(numpy(attention).astype("float32").sum(-1), 1.0, atol=1e-2)


def test_both_reject_feature_maps_that_are_not_rank_4():
    for layer in (PositionAttention(16), ChannelSelfAttention()):
        with pytest.raises(ValueError, match="rank 4"):
            layer(random_inputs((2, 36, 16)))


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")  # 1x1 maps
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.sampled_from([8, 16]), st.integers(0, 2**16)
)
def test_property_both_modules_follow_the_official_formulas_at_any_size(batch, height, width, channels, seed):
    x = random_inputs((batch, height, width, channels), seed=seed)
    pam = PositionAttention(channels, return_attention=True)
    cam = ChannelSelfAttention(return_attention=True)
    for layer in (pam, cam):
        # One compiled function per shape (JAX's eager mode would compile every operation).
        model = wrap(layer, x)
        layer.gamma.assign([1.0])
        out, attention = model.predict_on_batch(x)
        expected_out, expected_attention = reference_pam(pam, x, 1.0) if layer is pam else reference_cam(x, 1.0)
        np.testing.assert_allclose(np.asarray(attention), expected_attention, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.asarray(out), expected_out, rtol=1e-4, atol=1e-5)
