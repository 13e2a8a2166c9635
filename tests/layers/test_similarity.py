import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.similarity import (
    AdditiveSimilarity,
    BilinearSimilarity,
    CosineSimilarity,
    DotSimilarity,
    MLPSimilarity,
    ScaledDotSimilarity,
    get_similarity,
    stable_softmax,
)
from attention_zoo.utils import count_macs
from tests.helpers import check_layer, random_inputs, randomize_weights

QUERIES = random_inputs((2, 3, 8), seed=1)
KEYS = random_inputs((2, 5, 8), seed=2)


def numpy(x):
    return ops.convert_to_numpy(x)


def kernel(dense_or_conv):
    """A Dense or 1x1 Conv2D kernel as an (in, out) matrix."""
    value = numpy(dense_or_conv.kernel)
    return value.reshape(-1, value.shape[-1])


def test_dot_scores_every_query_against_every_key():
    scores = numpy(DotSimilarity()([QUERIES, KEYS]))
    np.testing.assert_allclose(scores, np.einsum("bqd,bkd->bqk", QUERIES, KEYS), rtol=1e-5, atol=1e-6)
    assert scores.shape == (2, 3, 5)


def test_scaled_dot_equals_dot_divided_by_the_square_root_of_the_width():
    dot = numpy(DotSimilarity()([QUERIES, KEYS]))
    scaled = numpy(ScaledDotSimilarity()([QUERIES, KEYS]))
    np.testing.assert_allclose(scaled, dot / np.sqrt(8.0), rtol=1e-5, atol=1e-6)


def test_general_similarity_is_queries_times_the_learned_kernel_times_the_keys():
    keys = random_inputs((2, 5, 6), seed=3)  # the bilinear form allows different widths
    layer = BilinearSimilarity()
    scores = numpy(layer([QUERIES, keys]))
    w = numpy(layer.kernel)
    assert w.shape == (8, 6)
    np.testing.assert_allclose(scores, np.einsum("bqd,de,bke->bqk", QUERIES, w, keys), rtol=1e-5, atol=1e-5)


def test_cosine_of_identical_vectors_is_the_scale_whatever_their_length():
    layer = CosineSimilarity(scale=10.0)
    scores = numpy(layer([QUERIES, 3.0 * QUERIES]))
    np.testing.assert_allclose(np.diagonal(scores, axis1=1, axis2=2), 10.0, rtol=1e-5)
    assert np.all(np.abs(scores) <= 10.0 + 1e-4)
    assert not layer.weights  # a fixed scale is no weight


def test_cosine_scores_are_normalised_dot_products():
    scores = numpy(CosineSimilarity()([QUERIES, KEYS]))
    q = QUERIES / np.linalg.norm(QUERIES, axis=-1, keepdims=True)
    k = KEYS / np.linalg.norm(KEYS, axis=-1, keepdims=True)
    np.testing.assert_allclose(scores, np.einsum("bqd,bkd->bqk", q, k), rtol=1e-5, atol=1e-6)


def test_cosine_of_a_zero_vector_is_zero_not_nan():
    queries = np.zeros((1, 2, 8), "float32")
    np.testing.assert_array_equal(numpy(CosineSimilarity()([queries, KEYS[:1]])), 0.0)


def test_learned_cosine_scale_is_one_trainable_scalar_starting_at_the_given_scale():
    layer = CosineSimilarity(scale=5.0, trainable_scale=True)
    layer([QUERIES, QUERIES])
    assert len(layer.trainable_weights) == 1
    layer.trainable_weights[0].assign(7.0)
    scores = numpy(layer([QUERIES, QUERIES]))
    np.testing.assert_allclose(np.diagonal(scores, axis1=1, axis2=2), 7.0, rtol=1e-5)


def test_additive_similarity_is_v_tanh_of_projected_queries_plus_projected_keys():
    layer = AdditiveSimilarity(units=4)
    layer([QUERIES, KEYS])
    randomize_weights(layer)
    scores = numpy(layer([QUERIES, KEYS]))
    wq, bq = kernel(layer.query_dense), numpy(layer.query_dense.bias)
    wk, v = kernel(layer.key_dense), kernel(layer.score_conv)[:, 0]
    hidden = np.tanh((QUERIES @ wq + bq)[:, :, None, :] + (KEYS @ wk)[:, None, :, :])
    np.testing.assert_allclose(scores, hidden @ v, rtol=1e-5, atol=1e-5)


def test_mlp_similarity_is_an_mlp_on_the_concatenated_query_and_key():
    layer = MLPSimilarity(hidden_units=(6, 4))
    layer([QUERIES, KEYS])
    randomize_weights(layer)
    scores = numpy(layer([QUERIES, KEYS]))
    first = np.concatenate([kernel(layer.query_dense), kernel(layer.key_dense)], axis=0)  # (8 + 8, 6)
    pairs = np.concatenate(
        [np.repeat(QUERIES[:, :, None, :], 5, axis=2), np.repeat(KEYS[:, None, :, :], 3, axis=1)], axis=-1
    )
    hidden = np.maximum(pairs @ first + numpy(layer.query_dense.bias), 0.0)
    hidden = np.maximum(hidden @ kernel(layer.hidden[0]) + numpy(layer.hidden[0].bias), 0.0)
    expected = (hidden @ kernel(layer.score_conv) + numpy(layer.score_conv.bias))[..., 0]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("dot", DotSimilarity),
        ("scaled_dot", ScaledDotSimilarity),
        ("general", BilinearSimilarity),
        ("bilinear", BilinearSimilarity),
        ("cosine", CosineSimilarity),
        ("additive", AdditiveSimilarity),
        ("concat", AdditiveSimilarity),
        ("mlp", MLPSimilarity),
    ],
)
def test_get_similarity_makes_a_new_layer_of_the_named_kind(name, cls):
    first, second = get_similarity(name), get_similarity(name)
    assert type(first) is cls and first is not second


def test_get_similarity_passes_its_arguments_to_the_constructor():
    layer = get_similarity("additive", units=7, name="score")
    assert layer.units == 7 and layer.name == "score"


def test_unknown_similarity_name_is_an_error_listing_the_valid_names():
    with pytest.raises(ValueError, match="Unknown similarity 'euclid'.*additive.*scaled_dot"):
        get_similarity("euclid")


def test_dot_products_need_queries_and_keys_of_the_same_width():
    with pytest.raises(ValueError, match="same width"):
        ScaledDotSimilarity()([QUERIES, random_inputs((2, 5, 6))])


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")  # dot
@pytest.mark.parametrize(
    "make",
    [
        DotSimilarity,
        BilinearSimilarity,
        lambda: CosineSimilarity(scale=4.0, trainable_scale=True),
        lambda: AdditiveSimilarity(units=4),
        lambda: MLPSimilarity(hidden_units=(6, 4)),
    ],
    ids=["dot", "general", "cosine", "additive", "mlp"],
)
def test_similarities_pass_the_full_layer_checks(make, tmp_path):
    check_layer(make(), [QUERIES, KEYS], tmp_path, [(2, 3, 5)])


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("dot", {}, 3 * 5 * 8),
        ("scaled_dot", {}, 3 * 5 * 8),
        ("general", {}, 3 * 8 * 8 + 3 * 5 * 8),
        ("cosine", {}, 3 * 5 * 8),
        ("additive", {"units": 4}, 3 * 8 * 4 + 5 * 8 * 4 + 3 * 5 * 4),
        ("mlp", {"hidden_units": (6, 4)}, (3 * 8 + 5 * 8) * 6 + 3 * 5 * (6 * 4 + 4 * 1)),
    ],
)
def test_macs_count_the_matrix_products_with_the_keys_shape_from_the_build(name, kwargs, expected):
    layer = get_similarity(name, **kwargs)
    queries, keys = keras.Input((3, 8)), keras.Input((5, 8))
    model = keras.Model([queries, keys], layer([queries, keys]))
    assert layer.count_macs((None, 3, 8)) == expected
    assert layer.count_macs([(1, 3, 8), (1, 5, 8)]) == expected
    assert count_macs(model) == expected


def test_macs_of_an_unbuilt_layer_need_the_keys_shape():
    with pytest.raises(ValueError, match="keys' shape"):
        DotSimilarity().count_macs((1, 3, 8))


@pytest.mark.parametrize("name", ["dot", "scaled_dot", "general", "cosine", "additive", "mlp"])
def test_mixed_precision_scores_are_float16_and_finite(name):
    keras.mixed_precision.set_global_policy("mixed_float16")
    scores = get_similarity(name)([20.0 * QUERIES, 20.0 * KEYS])
    assert keras.backend.standardize_dtype(scores.dtype) == "float16"
    assert np.all(np.isfinite(numpy(scores)))


def test_cosine_of_float16_vectors_whose_squared_norm_overflows_float16_is_still_right():
    keras.mixed_precision.set_global_policy("mixed_float16")
    big = 300.0 * QUERIES  # representable in float16; its squared norms (up to 8 * 300^2) are not
    scores = numpy(CosineSimilarity()([big, big])).astype("float32")
    np.testing.assert_allclose(np.diagonal(scores, axis1=1, axis2=2), 1.0, atol=1e-3)


def test_stable_softmax_keeps_the_dtype_and_survives_float16_logits_near_the_limit():
    logits = ops.cast(np.array([[60000.0, 0.0, -60000.0]], "float32"), "float16")
    weights = stable_softmax(logits)
    assert keras.backend.standardize_dtype(weights.dtype) == "float16"
    np.testing.assert_allclose(numpy(weights).astype("float32"), [[1.0, 0.0, 0.0]])
