import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import ops

from attention_zoo.layers.attention_pooling import HardAttentionPooling, LocalAttentionPooling, SoftAttentionPooling
from attention_zoo.utils import count_macs
from tests.helpers import check_layer, random_inputs, wrap

X = random_inputs((2, 6, 6, 16))
SHAPES = [(2, 16), (2, 6, 6)]

property_settings = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Few channel counts: each new weight shape costs JAX a compilation.
feature_maps = st.tuples(
    st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 4, 8]), st.integers(0, 2**16)
)


def numpy(x):
    return ops.convert_to_numpy(x)


def weighted_sum(x, weights):
    """The reference pooling: sum over positions of weight * feature vector."""
    return np.einsum("bhw,bhwc->bc", weights, x)


def assert_one_hot(weights):
    flat = weights.reshape(len(weights), -1)
    assert set(np.unique(flat)) <= {0.0, 1.0}
    np.testing.assert_array_equal(flat.sum(-1), 1.0)


def selected_vectors(x, one_hot):
    """The feature vector at the one position each example's map selects."""
    index = one_hot.reshape(len(one_hot), -1).argmax(-1)
    return x.reshape(len(x), -1, x.shape[-1])[np.arange(len(x)), index]


# Soft attention pooling


def test_soft_pooling_passes_the_full_layer_checks(tmp_path):
    check_layer(SoftAttentionPooling(16, return_attention=True), X, tmp_path, SHAPES)


def test_soft_pooling_weights_sum_to_one_and_the_output_is_their_weighted_sum():
    pooled, weights = (numpy(t) for t in SoftAttentionPooling(16, return_attention=True)(X))
    assert np.all(weights > 0)
    np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pooled, weighted_sum(X, weights), rtol=1e-5, atol=1e-6)


def test_soft_pooling_weights_are_the_softmax_of_the_query_scores():
    layer = SoftAttentionPooling(16, return_attention=True)
    _, weights = layer(X)
    query = numpy(layer.query)[0]
    logits = X.reshape(2, 36, 16) @ query / np.sqrt(16.0)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(numpy(weights).reshape(2, 36), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("similarity", ["dot", "scaled_dot", "general", "cosine", "additive", "mlp"])
def test_soft_pooling_accepts_every_similarity(similarity):
    layer = SoftAttentionPooling(16, similarity=similarity, return_attention=True)
    pooled, weights = (numpy(t) for t in layer(X))
    np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pooled, weighted_sum(X, weights), rtol=1e-5, atol=1e-6)


def test_soft_pooling_with_a_learned_similarity_trains_it_and_round_trips_its_settings(tmp_path):
    layer = SoftAttentionPooling(16, similarity="additive", similarity_kwargs={"units": 8}, return_attention=True)
    model = check_layer(layer, X, tmp_path, SHAPES)
    assert model.layers[-1].similarity.units == 8
    assert {w.path.rsplit("/", 1)[-1] for w in layer.trainable_weights} == {"query", "kernel", "bias"}


def test_several_queries_pool_separately_and_keep_a_query_axis(tmp_path):
    layer = SoftAttentionPooling(16, num_queries=3, return_attention=True)
    model = check_layer(layer, X, tmp_path, [(2, 3, 16), (2, 3, 6, 6)])
    pooled, weights = (numpy(t) for t in model(X))
    np.testing.assert_allclose(weights.sum(axis=(2, 3)), 1.0, rtol=1e-5)
    for q in range(3):
        np.testing.assert_allclose(pooled[:, q], weighted_sum(X, weights[:, q]), rtol=1e-5, atol=1e-6)


def test_soft_pooling_without_return_attention_gives_the_pooled_vector_only():
    assert tuple(SoftAttentionPooling(16)(X).shape) == (2, 16)


def test_pooling_macs_are_the_scores_plus_the_weighted_sum():
    assert SoftAttentionPooling(16).count_macs((None, 6, 6, 16)) == 36 * 16 + 36 * 16
    assert SoftAttentionPooling(16, num_queries=3).count_macs((None, 6, 6, 16)) == 2 * 3 * 36 * 16
    additive = SoftAttentionPooling(16, similarity="additive", similarity_kwargs={"units": 8})
    assert additive.count_macs((None, 6, 6, 16)) == 16 * 8 + 36 * 16 * 8 + 36 * 8 + 36 * 16
    assert HardAttentionPooling(16).count_macs((None, 6, 6, 16)) == 2 * 36 * 16
    assert LocalAttentionPooling(16, center_units=4).count_macs((None, 6, 6, 16)) == 16 * 4 + 4 * 2 + 2 * 36 * 16


def test_pooling_rejects_a_channel_count_it_was_not_made_for():
    with pytest.raises(ValueError, match="created for 8 channels; got input with 16"):
        SoftAttentionPooling(8)(X)


# Hard attention pooling


def test_hard_pooling_passes_the_full_layer_checks_with_gradients_through_the_straight_through_estimator(tmp_path):
    # check_layer trains one step (training=True): the hard forward pass must still let a
    # gradient reach the query.
    check_layer(HardAttentionPooling(16, seed=3, return_attention=True), X, tmp_path, SHAPES)


def test_hard_pooling_at_inference_returns_exactly_the_best_scoring_input_position():
    layer = HardAttentionPooling(16, return_attention=True)
    pooled, weights = (numpy(t) for t in layer(X))
    assert_one_hot(weights)
    np.testing.assert_array_equal(pooled, selected_vectors(X, weights))
    scores = X.reshape(2, 36, 16) @ numpy(layer.query)[0]
    np.testing.assert_array_equal(weights.reshape(2, 36).argmax(-1), scores.argmax(-1))
    again_pooled, again_weights = (numpy(t) for t in layer(X, training=False))
    np.testing.assert_array_equal(again_weights, weights)
    np.testing.assert_array_equal(again_pooled, pooled)


def test_straight_through_training_output_is_one_hot_and_selects_an_input_position():
    layer = HardAttentionPooling(16, seed=0, return_attention=True)
    pooled, weights = (numpy(t) for t in layer(X, training=True))
    assert_one_hot(weights)
    np.testing.assert_allclose(pooled, selected_vectors(X, weights), rtol=1e-6, atol=1e-6)


def test_training_samples_positions_at_random_while_inference_is_deterministic():
    layer = HardAttentionPooling(16, seed=0, return_attention=True)
    layer(X)
    layer.query.assign(np.zeros((1, 16), "float32"))  # equal scores: every position as likely
    sampled = {int(numpy(layer(X, training=True)[1])[0].argmax()) for _ in range(8)}
    inferred = {int(numpy(layer(X, training=False)[1])[0].argmax()) for _ in range(8)}
    assert len(sampled) > 1
    assert len(inferred) == 1


def test_soft_gumbel_samples_without_straight_through_are_soft_weights_summing_to_one():
    layer = HardAttentionPooling(16, straight_through=False, temperature=2.0, seed=0, return_attention=True)
    pooled, weights = (numpy(t) for t in layer(X, training=True))
    assert np.all(weights > 0) and np.all(weights < 1)
    np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pooled, weighted_sum(X, weights), rtol=1e-5, atol=1e-6)


def test_soft_gumbel_pooling_passes_the_full_layer_checks(tmp_path):
    check_layer(HardAttentionPooling(16, straight_through=False, seed=1, return_attention=True), X, tmp_path, SHAPES)


def test_hard_pooling_needs_a_positive_temperature():
    with pytest.raises(ValueError, match="temperature must be positive"):
        HardAttentionPooling(16, temperature=0.0)


# Local attention pooling


def test_local_pooling_passes_the_full_layer_checks(tmp_path):
    check_layer(LocalAttentionPooling(16, window=2, return_attention=True), X, tmp_path, SHAPES)


@pytest.mark.parametrize("window", [0.5, 1.0, 2.0])
def test_local_weights_vanish_outside_the_window_around_the_predicted_centre(window):
    x = random_inputs((2, 8, 8, 16), seed=4)
    layer = LocalAttentionPooling(16, window=window, return_attention=True)
    pooled, weights = (numpy(t) for t in layer(x))
    center = numpy(layer.predict_center(x))
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    for b in range(2):
        outside = (np.abs(rows - center[b, 0]) > window) | (np.abs(cols - center[b, 1]) > window)
        assert outside.any()
        assert np.all(weights[b][outside] < 1e-12)
        assert np.all(weights[b][~outside] > 0)
    np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pooled, weighted_sum(x, weights), rtol=1e-5, atol=1e-6)


def test_local_weights_are_the_scores_times_the_gaussian_window_renormalised():
    layer = LocalAttentionPooling(16, window=2, return_attention=True)
    _, weights = layer(X)
    center = numpy(layer.predict_center(X))
    rows, cols = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    scores = X.reshape(2, 6, 6, 16) @ numpy(layer.query)[0] / 4.0
    for b in range(2):
        distance2 = (rows - center[b, 0]) ** 2 + (cols - center[b, 1]) ** 2
        inside = (np.abs(rows - center[b, 0]) <= 2) & (np.abs(cols - center[b, 1]) <= 2)
        expected = np.where(inside, np.exp(scores[b]) * np.exp(-distance2 / (2 * 1.0**2)), 0.0)
        np.testing.assert_allclose(numpy(weights)[b], expected / expected.sum(), rtol=1e-4, atol=1e-7)


def test_predicted_centre_lies_on_the_grid():
    x = random_inputs((2, 5, 7, 16), seed=5, low=-10.0, high=10.0)
    center = numpy(LocalAttentionPooling(16).predict_center(x))
    assert center.shape == (2, 2)
    assert np.all(center >= 0) and np.all(center[:, 0] <= 4) and np.all(center[:, 1] <= 6)


def test_local_pooling_with_a_window_larger_than_the_map_is_soft_pooling():
    local = LocalAttentionPooling(16, window=1000.0, return_attention=True)
    soft = SoftAttentionPooling(16, return_attention=True)
    local(X), soft(X)
    soft.query.assign(local.query)
    for a, b in zip(local(X), soft(X)):
        np.testing.assert_allclose(numpy(a), numpy(b), rtol=1e-3, atol=1e-6)


def test_local_pooling_works_on_feature_maps_of_any_size_in_one_model():
    inputs = keras.Input((None, None, 16))
    model = keras.Model(inputs, LocalAttentionPooling(16, return_attention=True)(inputs))
    for shape in [(2, 5, 7, 16), (1, 3, 3, 16)]:
        pooled, weights = model.predict_on_batch(random_inputs(shape))
        assert pooled.shape == (shape[0], 16) and weights.shape == shape[:3]
        np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert count_macs(model, input_shape=(8, 8, 16)) == 16 * 16 + 16 * 2 + 2 * 64 * 16


def test_local_window_must_hold_a_position():
    with pytest.raises(ValueError, match="window must be at least 0.5"):
        LocalAttentionPooling(16, window=0.25)


# All three


@pytest.mark.parametrize("cls", [SoftAttentionPooling, HardAttentionPooling, LocalAttentionPooling])
@pytest.mark.parametrize("training", [False, True])
def test_mixed_precision_pooling_is_float16_and_finite(cls, training):
    keras.mixed_precision.set_global_policy("mixed_float16")
    pooled, weights = cls(16, return_attention=True)(50.0 * X, training=training)
    assert keras.backend.standardize_dtype(pooled.dtype) == "float16"
    assert np.all(np.isfinite(numpy(pooled))) and np.all(np.isfinite(numpy(weights)))
    np.testing.assert_allclose(numpy(weights).astype("float32").sum(axis=(1, 2)), 1.0, atol=1e-2)


def infer(layer, x):
    """The layer's outputs at inference, run as one compiled function (a fresh shape costs one
    compilation, not one per operation as in JAX's eager mode)."""
    return [np.asarray(t) for t in keras.tree.flatten(wrap(layer, x).predict_on_batch(x))]


def assert_inside_a_window(weights, radius):
    """The positions with non-zero weight fit in a square of side 2 * radius (per example)."""
    for example in weights:
        rows, cols = np.nonzero(example)
        assert rows.max() - rows.min() <= 2 * radius and cols.max() - cols.min() <= 2 * radius


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")  # 1x1 maps
@property_settings
@given(feature_maps)
def test_property_every_pooling_averages_the_input_with_weights_summing_to_one(shape):
    batch, height, width, channels, seed = shape
    x = random_inputs((batch, height, width, channels), seed=seed)
    soft_pooled, soft_weights = infer(SoftAttentionPooling(channels, return_attention=True), x)
    np.testing.assert_allclose(soft_weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(soft_pooled, weighted_sum(x, soft_weights), rtol=1e-5, atol=1e-5)

    hard_pooled, hard_weights = infer(HardAttentionPooling(channels, return_attention=True), x)
    assert_one_hot(hard_weights)
    np.testing.assert_array_equal(hard_pooled, selected_vectors(x, hard_weights))

    local_pooled, local_weights = infer(LocalAttentionPooling(channels, window=1.0, return_attention=True), x)
    assert_inside_a_window(local_weights, 1.0)
    np.testing.assert_allclose(local_weights.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(local_pooled, weighted_sum(x, local_weights), rtol=1e-5, atol=1e-5)
