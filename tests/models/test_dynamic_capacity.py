"""Dynamic Capacity Networks: the paper's gradient-based attention (saliency, top-k patches, fine
vectors in place of coarse ones), the hint loss, training with plain `fit`, saving, and the cost
against the fine model on the whole image."""

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.models.dynamic_capacity import DynamicCapacityNetwork, blocks, macs_report, prediction_entropy
from attention_zoo.models.dynamic_capacity.costs import stack_macs
from tests.helpers import (
    assert_keras_file_round_trip,
    check_mixed_precision,
    check_model_contract,
    random_inputs,
)

pytestmark = pytest.mark.every_backend

DIGITS = random_inputs((2, 60, 60, 1), low=0.0, high=1.0)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def small_dcn(size=60, channels=1, **options):
    keras.utils.set_random_seed(1)
    options.setdefault("num_classes", 10)
    return attention_zoo.get("dcn", input_shape=(size, size, channels), **options)


# ---------------------------------------------------------------------------- registry and shapes


@pytest.mark.parametrize("name, params", [("dcn", 62_218), ("dcn_coarse", 41_146), ("dcn_fine", 59_002)])
def test_registered_models_have_the_paper_layers_and_reported_errors(name, params):
    info = attention_zoo.model_info(name)
    assert info.family == "dynamic_capacity"
    assert info.paper.title == "Dynamic Capacity Networks"
    assert info.citation.startswith("@inproceedings{almahairi2016dcn")
    assert "unverified" in info.reported["source"]
    assert (info.default_input_size, info.input_channels, info.min_input_size) == (100, 1, 23)
    model = attention_zoo.get(name, num_classes=10)
    assert attention_zoo.count_params(model) == info.params == params


def test_reported_errors_are_the_papers_cluttered_mnist_figures():
    names = ("dcn_coarse", "dcn_fine", "dcn")
    errors = {n: attention_zoo.model_info(n).reported["cluttered_mnist_100_error"] for n in names}
    assert errors == {"dcn_coarse": 3.69, "dcn_fine": 1.70, "dcn": 1.39}


def test_default_input_is_the_papers_100x100_and_60x60_is_an_option():
    model = attention_zoo.get("dcn", num_classes=10)
    assert model.image_shape == (100, 100, 1) and model.grid_shape == (23, 23)
    assert tuple(model(random_inputs((2, 100, 100, 1))).shape) == (2, 10)
    model = small_dcn()
    assert model.image_shape == (60, 60, 1) and model.grid_shape == (13, 13)
    assert tuple(model(DIGITS).shape) == (2, 10)


@pytest.mark.parametrize("size", [23, 35, 60, 61, 62, 63, 100])
def test_one_patch_gives_one_vector_and_the_dense_fine_grid_is_the_coarse_grid(size):
    grid = blocks.coarse_grid_size(size)
    assert stack_macs(blocks.coarse_layers(), (size, size, 1))[1] == (grid, grid, 24)
    assert stack_macs(blocks.fine_layers(), (14, 14, 1))[1] == (1, 1, 24)
    padded = size + sum(blocks.IMAGE_PADDING)
    assert stack_macs(blocks.fine_layers(), (padded, padded, 1))[1] == (grid, grid, 24)
    assert grid == (size - 7) // 4  # closed form of conv 7/2 then conv 3/2 (valid)


def test_baselines_meet_the_zoo_contract(tmp_path):
    for name in ("dcn_coarse", "dcn_fine"):
        check_model_contract(attention_zoo.get(name, input_shape=(60, 60, 1), num_classes=4), DIGITS, tmp_path, (2, 4))


@pytest.mark.parametrize("pooling, shape", [(None, (2, 5, 5, 96)), ("avg", (2, 96)), ("max", (2, 96))])
def test_baselines_without_top_end_at_the_top_convolution(pooling, shape):
    model = attention_zoo.get("dcn_fine", input_shape=(60, 60, 1), include_top=False, pooling=pooling)
    assert tuple(model(DIGITS).shape) == shape


# ------------------------------------------------------------------------------------- attention


def test_attention_gives_positions_saliency_boxes_and_patches():
    model = small_dcn()
    attention = model.attention(DIGITS)
    shapes = {key: tuple(value.shape) for key, value in attention.items()}
    assert shapes == {"positions": (2, 8, 2), "saliency": (2, 13, 13), "boxes": (2, 8, 4), "patches": (2, 8, 14, 14, 1)}
    logits, same = model(DIGITS, return_attention=True)
    assert tuple(logits.shape) == (2, 10)
    np.testing.assert_array_equal(numpy(same["positions"]), numpy(attention["positions"]))


def test_entropy_is_log_classes_for_uniform_and_near_zero_for_confident_predictions():
    entropy = numpy(prediction_entropy(np.array([[0.0] * 10, [50.0] + [0.0] * 9], "float32")))
    np.testing.assert_allclose(entropy, [np.log(10.0), 0.0], atol=1e-6)


def test_saliency_matches_numpy_finite_differences_of_the_entropy_gradient():
    model = small_dcn(size=35)  # 7x7 coarse grid, the top convolution sees it as 2x2
    images = random_inputs((2, 35, 35, 1), seed=3, low=0.0, high=1.0)
    features = numpy(model.feature_maps(images)["coarse"]).astype("float64")
    saliency = numpy(model.attention(images)["saliency"])
    kernel, bias, dense_kernel, dense_bias = (numpy(w).astype("float64") for w in model.top.weights)

    def entropy(maps):  # the top layers in float64: conv 4x4/2 + ReLU, global max, dense
        size = (maps.shape[1] - 4) // 2 + 1
        conv = np.stack(
            [
                np.einsum("nhwc,hwco->no", maps[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4], kernel) + bias
                for i in range(size)
                for j in range(size)
            ],
            axis=1,
        )
        logits = np.maximum(conv, 0).max(axis=1) @ dense_kernel + dense_bias
        log_p = logits - logits.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        return -(np.exp(log_p) * log_p).sum(axis=1)

    eps = 1e-5
    for example in range(2):
        point = features[example]
        basis = np.eye(point.size).reshape(-1, *point.shape) * eps
        gradient = (entropy(point + basis) - entropy(point - basis)) / (2 * eps)
        reference = np.sqrt((gradient.reshape(point.shape) ** 2).sum(axis=-1))
        assert reference.max() > 0
        np.testing.assert_allclose(saliency[example], reference, rtol=1e-3, atol=1e-4 * reference.max())


def test_saliency_is_non_negative_and_zero_where_a_position_cannot_change_the_prediction():
    model = small_dcn(size=35)  # 7x7 grid: the 4x4/2 top convolution never reads row 6 nor column 6
    saliency = numpy(model.attention(random_inputs((2, 35, 35, 1), low=0.0, high=1.0))["saliency"])
    assert saliency.shape == (2, 7, 7)
    assert np.all(saliency >= 0)
    assert np.all(saliency[:, 6, :] == 0) and np.all(saliency[:, :, 6] == 0)
    assert np.all(saliency[:, :6, :6].max(axis=(1, 2)) > 0)


def test_selected_positions_are_the_top_k_of_the_saliency_most_salient_first():
    model = small_dcn(num_patches=8)
    attention = model.attention(DIGITS)
    saliency, positions = numpy(attention["saliency"]), numpy(attention["positions"])
    for example in range(2):
        flat = saliency[example].reshape(-1)
        chosen = positions[example, :, 0] * 13 + positions[example, :, 1]
        assert len(set(chosen.tolist())) == 8
        np.testing.assert_array_equal(flat[chosen], np.sort(flat)[::-1][:8])


def test_patches_are_the_input_windows_of_the_selected_positions_with_zero_padding():
    model = small_dcn(channels=3)
    images = random_inputs((2, 60, 60, 3), low=0.5, high=1.0)
    attention = model.attention(images)
    positions, boxes, patches = (numpy(attention[k]) for k in ("positions", "boxes", "patches"))
    padded = np.pad(images, ((0, 0), (2, 1), (2, 1), (0, 0)))
    for example in range(2):
        for slot, (row, col) in enumerate(positions[example]):
            np.testing.assert_array_equal(boxes[example, slot], [4 * row - 2, 4 * col - 2, 4 * row + 12, 4 * col + 12])
            window = padded[example, 4 * row : 4 * row + 14, 4 * col : 4 * col + 14]
            np.testing.assert_array_equal(patches[example, slot], window)


def test_patches_at_the_border_read_zeros_outside_the_image():
    model = small_dcn()  # 13x13 grid: patches span rows 4r - 2 ... 4r + 11, the last one 46 ... 59
    corners = np.array([[[0, 0], [0, 12], [12, 0], [12, 12], [6, 6], [0, 6], [6, 12], [12, 6]]] * 2)
    patches = numpy(model.extract_patches(np.ones((2, 60, 60, 1), "float32"), corners))
    assert patches.shape == (2, 8, 14, 14, 1)
    top_left, top_right, bottom_left, bottom_right, centre = patches[0, :5]
    assert np.all(top_left[:2] == 0) and np.all(top_left[:, :2] == 0) and np.all(top_left[2:, 2:] == 1)
    assert np.all(top_right[:2] == 0) and np.all(top_right[2:] == 1)
    assert np.all(bottom_left[:, :2] == 0) and np.all(bottom_left[:, 2:] == 1)
    assert np.all(bottom_right == 1) and np.all(centre == 1)


def test_fine_vectors_replace_coarse_vectors_exactly_at_the_selected_positions_and_nowhere_else():
    model = small_dcn()
    maps = {k: numpy(v) for k, v in model.feature_maps(DIGITS).items()}
    attention = model.attention(DIGITS)
    positions = numpy(attention["positions"])
    fine = numpy(model.fine(keras.ops.reshape(attention["patches"], (-1, 14, 14, 1)))).reshape(2, 8, 24)
    np.testing.assert_allclose(maps["fine"], fine, rtol=1e-6, atol=1e-6)
    expected = maps["coarse"].copy()
    for example in range(2):
        for slot, (row, col) in enumerate(positions[example]):
            expected[example, row, col] = maps["fine"][example, slot]
    np.testing.assert_array_equal(maps["mixed"], expected)
    assert not np.array_equal(maps["mixed"], maps["coarse"])


def test_logits_are_the_top_layers_on_the_mixed_map():
    model = small_dcn()
    mixed = model.feature_maps(DIGITS)["mixed"]
    np.testing.assert_allclose(numpy(model(DIGITS)), numpy(model.top(mixed)), rtol=1e-5, atol=1e-5)


def test_predict_runs_the_same_selection_compiled_as_eagerly():
    model = small_dcn()
    np.testing.assert_allclose(model.predict(DIGITS, verbose=0), numpy(model(DIGITS)), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- training


def test_hint_is_the_mean_squared_distance_of_coarse_and_fine_vectors_and_joins_the_loss_in_training():
    model = small_dcn(hint_weight=0.5)
    maps = {k: numpy(v) for k, v in model.feature_maps(DIGITS).items()}
    positions = numpy(model.attention(DIGITS)["positions"])
    coarse = np.stack([maps["coarse"][b, positions[b, :, 0], positions[b, :, 1]] for b in range(2)])
    expected = ((coarse - maps["fine"]) ** 2).sum(-1).mean()
    assert float(numpy(maps["hint"])) == pytest.approx(expected, rel=1e-5)
    model(DIGITS, training=True)
    assert [float(numpy(loss)) for loss in model.losses] == [pytest.approx(0.5 * expected, rel=1e-5)]
    model(DIGITS, training=False)
    assert model.losses == []


def snapshot(layer):
    return [numpy(w).copy() for w in layer.trainable_weights]


def changed(layer, before):
    return [not np.array_equal(numpy(w), old) for w, old in zip(layer.trainable_weights, before)]


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # by design: the hint has none for fine and top
def test_the_hint_loss_alone_trains_only_the_coarse_layers():
    model = small_dcn(hint_weight=1.0)
    before = {part: snapshot(getattr(model, part)) for part in ("coarse", "fine", "top")}
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=None)
    model.train_on_batch(DIGITS, np.zeros((2,), "int32"))
    assert all(changed(model.coarse, before["coarse"]))
    assert not any(changed(model.fine, before["fine"]))
    assert not any(changed(model.top, before["top"]))


def test_gradients_of_the_task_and_hint_losses_reach_every_trainable_weight():
    model = small_dcn(num_patches=8)
    before = snapshot(model)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.train_on_batch(DIGITS, np.array([3, 7]))
    frozen = [w.path for w, moved in zip(model.trainable_weights, changed(model, before)) if not moved]
    assert len(model.trainable_weights) == 2 * (2 + 5 + 2)
    assert not frozen, f"no gradient reached: {frozen}"


def bars(count, size=60, seed=0):
    """Class 0: a horizontal bar, class 1: a vertical bar, anywhere on a noisy canvas with clutter."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.1, size=(count, size, size, 1)).astype("float32")
    labels = rng.integers(0, 2, size=count)
    for image, label in zip(images, labels):
        for _ in range(3):  # clutter: small squares
            r, c = rng.integers(0, size - 3, size=2)
            image[r : r + 3, c : c + 3] = 0.6
        height, width = (3, 14) if label == 0 else (14, 3)
        r, c = rng.integers(0, size - 14, size=2)
        image[r : r + height, c : c + width] = 1.0
    return images, labels


def test_fit_trains_the_dcn_and_the_loss_goes_down():
    images, labels = bars(64)
    model = small_dcn(num_classes=2)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(images, labels, batch_size=16, epochs=5, verbose=0, shuffle=False).history
    assert np.all(np.diff(history["loss"]) < 0), history["loss"]
    assert history["accuracy"][-1] > 0.75, history["accuracy"]


# --------------------------------------------------------------------------------- saving, costs


def test_config_and_keras_file_round_trips_give_identical_outputs(tmp_path):
    model = small_dcn(num_patches=4, hint_weight=0.2, classifier_activation="softmax")
    loaded = assert_keras_file_round_trip(model, DIGITS, tmp_path)
    assert isinstance(loaded, DynamicCapacityNetwork)
    assert (loaded.num_patches, loaded.hint_weight, loaded.image_shape) == (4, 0.2, (60, 60, 1))
    np.testing.assert_array_equal(
        numpy(loaded.attention(DIGITS)["positions"]), numpy(model.attention(DIGITS)["positions"])
    )


def test_classifier_activation_applies_after_the_logits_the_saliency_uses():
    model = small_dcn(classifier_activation="softmax")
    np.testing.assert_allclose(numpy(model(DIGITS)).sum(axis=1), 1.0, rtol=1e-5)


def test_macs_report_counts_coarse_saliency_k_patches_and_top_against_the_fine_model():
    model = small_dcn(size=100, num_patches=8)
    report = macs_report(model)
    coarse = attention_zoo.count_macs(attention_zoo.get("dcn_coarse", num_classes=10))
    fine_full = attention_zoo.count_macs(attention_zoo.get("dcn_fine", num_classes=10))
    top = attention_zoo.count_macs(keras.Sequential([keras.Input((23, 23, 24)), *blocks.top_layers(10)]))
    patch = attention_zoo.count_macs(keras.Sequential([keras.Input((14, 14, 1)), *blocks.fine_layers()]))
    assert report["coarse"] == coarse
    assert report["fine_full"] == fine_full
    assert report["dcn"] == (coarse - top) + 3 * top + 8 * patch
    assert report["dcn"] < report["fine_full"]
    assert report["ratio"] == pytest.approx(report["dcn"] / report["fine_full"])
    assert model.count_macs() == report["dcn"]
    more = macs_report(small_dcn(size=100, num_patches=16))
    assert more["dcn"] - report["dcn"] == 8 * patch


def test_a_trained_network_runs_with_another_number_of_patches_and_the_same_weights(tmp_path):
    model = small_dcn(num_patches=4)
    same = model.with_patches(4)
    np.testing.assert_array_equal(numpy(same(DIGITS)), numpy(model(DIGITS)))

    more = model.with_patches(12)
    assert more.num_patches == 12 and model.num_patches == 4
    assert [w.path for w in more.weights] == [w.path for w in model.weights]
    for copied, original in zip(more.weights, model.weights):
        np.testing.assert_array_equal(numpy(copied), numpy(original))
        assert copied is not original
    # The same saliency ranks the positions, so the first four of twelve are the four.
    positions = numpy(more.attention(DIGITS)["positions"])
    assert positions.shape == (2, 12, 2)
    np.testing.assert_array_equal(positions[:, :4], numpy(model.attention(DIGITS)["positions"]))
    assert more.count_macs() > model.count_macs()

    model.save_weights(tmp_path / "trained_with_4.weights.h5")
    loaded = small_dcn(num_patches=12)
    loaded.load_weights(tmp_path / "trained_with_4.weights.h5")
    np.testing.assert_allclose(numpy(loaded(DIGITS)), numpy(more(DIGITS)), rtol=1e-6, atol=1e-6)

    with pytest.raises(ValueError, match="num_patches"):
        model.with_patches(0)


# ------------------------------------------------------------------------------------ bad input


def test_bad_options_and_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="dcn needs inputs of at least 23x23"):
        attention_zoo.get("dcn", input_shape=(20, 60, 1))
    with pytest.raises(ValueError, match="num_patches=200 exceeds the 169 positions"):
        attention_zoo.get("dcn", input_shape=(60, 60, 1), num_patches=200)
    with pytest.raises(ValueError, match="num_patches must be a positive Python integer"):
        attention_zoo.get("dcn", num_patches=0)
    with pytest.raises(ValueError, match="num_patches must be a positive Python integer"):
        attention_zoo.get("dcn", num_patches=2.5)
    with pytest.raises(ValueError, match="hint_weight must be a non-negative number"):
        attention_zoo.get("dcn", hint_weight=-1.0)
    with pytest.raises(ValueError, match="no headless form"):
        attention_zoo.get("dcn", include_top=False)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['patches'\]"):
        attention_zoo.get("dcn", patches=4)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_patches'\]"):
        attention_zoo.get("dcn_fine", num_patches=4)
    with pytest.raises(ValueError, match="classifier_activation must be None or the name"):
        attention_zoo.get("dcn", classifier_activation=lambda x: x)
    with pytest.raises(ValueError, match="image_shape must be"):
        DynamicCapacityNetwork(image_shape=(60, 60))
    model = small_dcn()
    with pytest.raises(ValueError, match=r"built for images of shape \(batch, 60, 60, 1\).*image_shape=\(64, 64, 1\)"):
        model(random_inputs((1, 64, 64, 1)))


def test_runs_in_mixed_precision():
    model = check_mixed_precision(lambda: small_dcn(), DIGITS)
    assert keras.backend.standardize_dtype(model.attention(DIGITS)["saliency"].dtype) == "float32"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="LiteRT export converts TensorFlow graphs")
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_exports_to_litert_with_builtin_ops_only_saliency_backward_pass_included(tmp_path):
    import tensorflow as tf

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # tf.lite's own interpreter, deprecated but the same runtime
        Interpreter = tf.lite.Interpreter
    model = small_dcn()
    path = str(tmp_path / "dcn.tflite")
    model.export(
        path,
        format="litert",
        input_signature=[keras.InputSpec(shape=(1, 60, 60, 1), dtype="float32")],
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
        verbose=False,
    )
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], DIGITS[:1])
    interpreter.invoke()
    logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(logits, numpy(model(DIGITS[:1])), rtol=1e-4, atol=1e-5)
