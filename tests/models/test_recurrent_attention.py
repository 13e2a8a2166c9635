"""The Recurrent Attention Model (Mnih et al., 2014): the paper's networks and sizes, the
hybrid loss (cross-entropy + REINFORCE with a learned baseline) under plain `fit`, which
loss trains which weights, stochastic glimpses in training and deterministic ones at
inference, and `.keras` round trips."""

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.models.recurrent_attention import RecurrentAttentionModel
from tests.helpers import assert_keras_file_round_trip, randomize_weights

pytestmark = pytest.mark.every_backend

LEARNED_LOCATION_LAYERS = ("location_mean", "baseline")
CLASSIFICATION_LAYERS = (
    "glimpse_hidden",
    "location_hidden",
    "glimpse_what",
    "glimpse_where",
    "core_input",
    "core_recurrent",
    "classifier",
)


def quadrant_squares(count, size=28, seed=0):
    """Images with one bright 6x6 square; its quadrant is the class (0..3)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size, 1), "float32")
    labels = rng.integers(0, 4, count).astype("int32")
    half = size // 2
    for image, label in zip(images, labels):
        top = (label // 2) * half + rng.integers(1, half - 7)
        left = (label % 2) * half + rng.integers(1, half - 7)
        image[top : top + 6, left : left + 6] = 1.0
    return images, labels


def small_ram(**options):
    """ram_mnist28 with 3 glimpses of 2 scales: one configuration for most tests keeps
    JAX's per-shape compilation cache warm."""
    defaults = {"num_classes": 4, "num_glimpses": 3, "num_scales": 2, "seed": 0}
    return attention_zoo.get("ram_mnist28", **{**defaults, **options})


def numpy(value):
    return keras.ops.convert_to_numpy(value)


def dense_params(inputs, units):
    return inputs * units + units


def expected_params(num_classes, channels, patch_size, num_scales, learned_locations=True):
    """The paper's networks: h_g 128, h_l 128, g 256 (two Linears), core 256 (two
    Linears), location mean 2 and baseline 1 from h_t, classifier from h_T."""
    total = dense_params(patch_size * patch_size * num_scales * channels, 128) + dense_params(2, 128)
    total += dense_params(128, 256) + dense_params(128, 256)
    total += dense_params(256, 256) + dense_params(256, 256)
    if learned_locations:
        total += dense_params(256, 2) + dense_params(256, 1)
    return total + dense_params(256, num_classes)


def layer_of(path):
    return path.split("/")[-2]


class NoClassificationLoss(keras.losses.Loss):
    """Zero cross-entropy, so that only the REINFORCE and baseline terms move weights."""

    def call(self, y_true, y_pred):
        return 0.0 * keras.ops.mean(y_pred, axis=-1)


def weights_moved_by_one_sgd_step(model, images, labels, loss=None):
    """(paths of the trainable weights one SGD step of `fit` changed, paths of all of them)."""
    before = {w.path: numpy(w) for w in model.trainable_weights}
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss)
    model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    moved = {w.path for w in model.trainable_weights if not np.array_equal(numpy(w), before[w.path])}
    return moved, set(before)


def test_presets_follow_the_paper_and_record_its_results():
    ram = attention_zoo.get("ram", num_classes=10)
    assert (ram.num_glimpses, ram.patch_size, ram.num_scales, ram.scale_factor) == (8, 12, 3, 2)
    mnist = attention_zoo.get("ram_mnist28", num_classes=10)
    assert (mnist.num_glimpses, mnist.patch_size, mnist.num_scales) == (7, 8, 1)
    for model in (ram, mnist):
        assert (model.glimpse_hidden_units, model.location_hidden_units) == (128, 128)
        assert (model.glimpse_units, model.core_units) == (256, 256)
    info = attention_zoo.model_info("ram")
    assert info.family == "recurrent_attention" and info.default_input_size == 60 and info.input_channels == 1
    assert info.reported["translated_mnist60_error"] == 1.20
    assert info.reported["cluttered_mnist60_error"] == 4.04
    assert info.reported["cluttered_mnist60_conv2_baseline_error"] == 8.09
    assert info.reported["cluttered_mnist60_random_glimpses_error"] == 14.4
    assert attention_zoo.model_info("ram_mnist28").reported["mnist_error"] == 1.07
    assert info.citation.startswith("@inproceedings{mnih2014ram")
    assert info.paper.title == "Recurrent Models of Visual Attention"
    # predict compiles the unrolled graph once (cheaper than op-by-op eager calls on JAX).
    assert ram.predict(np.zeros((2, 60, 60, 1), "float32"), verbose=0).shape == (2, 10)
    for name, model in (("ram", ram), ("ram_mnist28", mnist)):
        expected = expected_params(10, 1, model.patch_size, model.num_scales)
        assert attention_zoo.count_params(model) == attention_zoo.model_info(name).params == expected


@pytest.mark.parametrize(
    "name, options, channels, patch_size, num_scales, learned",
    [
        ("ram_mnist28", {"random_glimpses": True}, 1, 8, 1, False),
        ("ram", {"input_shape": (60, 60, 3), "num_scales": 4}, 3, 12, 4, True),
    ],
)
def test_parameter_count_follows_from_the_layer_sizes(name, options, channels, patch_size, num_scales, learned):
    model = attention_zoo.get(name, num_classes=10, **options)
    expected = expected_params(10, channels, patch_size, num_scales, learned)
    assert attention_zoo.count_params(model) == expected
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == expected


def test_hybrid_loss_is_cross_entropy_plus_reinforce_plus_baseline_error():
    model = small_ram(reinforce_weight=0.5, baseline_weight=2.0)
    model.compile(optimizer="sgd")
    logits = np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], "float32")
    labels = np.array([0, 2, 3], "int32")
    log_probs = np.array([[-1.0, -2.0], [0.5, -0.3], [-0.7, 0.2]], "float32")
    baselines = np.array([[0.2, 0.9], [0.1, 0.4], [0.6, 0.3]], "float32")
    locations = np.zeros((3, 3, 2), "float32")
    rollout = {"logits": logits, "locations": locations, "log_probs": log_probs, "baselines": baselines}
    loss = float(numpy(model.compute_loss(None, labels, rollout, training=True)))

    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    cross_entropy = -log_softmax[np.arange(3), labels].mean()
    reward = np.array([1.0, 0.0, 1.0])  # arg-max right, wrong, right
    reinforce = np.mean(-np.sum(log_probs * (reward[:, None] - baselines), axis=1))
    baseline_error = np.mean((baselines - reward[:, None]) ** 2)
    assert loss == pytest.approx(cross_entropy + 0.5 * reinforce + 2.0 * baseline_error, rel=1e-5)
    # Inference outputs (plain logits) carry no sampled actions: the loss is the cross-entropy.
    inference_loss = model.compute_loss(None, labels, logits, training=False)
    assert float(numpy(inference_loss)) == pytest.approx(cross_entropy, rel=1e-5)


def test_reward_is_one_exactly_for_a_correct_final_classification_with_sparse_or_one_hot_labels():
    model = small_ram()
    logits = np.array([[0.1, 0.9, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]], "float32")
    np.testing.assert_array_equal(numpy(model.reward(np.array([1, 2]), logits)), [1.0, 0.0])
    np.testing.assert_array_equal(numpy(model.reward(np.array([[1], [3]]), logits)), [1.0, 1.0])
    np.testing.assert_array_equal(numpy(model.reward(np.eye(4, dtype="float32")[[0, 3]], logits)), [0.0, 1.0])


def test_one_sgd_step_of_fit_gives_every_trainable_weight_a_gradient():
    images, labels = quadrant_squares(16)
    moved, every_weight = weights_moved_by_one_sgd_step(small_ram(), images, labels)
    assert {layer_of(path) for path in every_weight} == set(CLASSIFICATION_LAYERS + LEARNED_LOCATION_LAYERS)
    assert len(every_weight) == 2 * len(CLASSIFICATION_LAYERS + LEARNED_LOCATION_LAYERS)  # kernels and biases
    assert moved == every_weight


@pytest.mark.parametrize(
    "options, frozen",
    [
        ({"reinforce_weight": 0.0}, {"location_mean"}),  # only REINFORCE trains the location network
        ({"baseline_weight": 0.0}, {"baseline"}),  # only the baseline error trains the baseline
    ],
)
def test_each_term_of_the_hybrid_loss_trains_its_own_part(options, frozen):
    images, labels = quadrant_squares(16)
    moved, every_weight = weights_moved_by_one_sgd_step(small_ram(**options), images, labels)
    # The rest, the glimpse, core and classification networks included, still learns.
    assert moved == {path for path in every_weight if layer_of(path) not in frozen}


@pytest.mark.parametrize("reinforce_trains_core", [True, False])
def test_policy_gradient_reaches_the_core_and_glimpse_networks_as_in_the_paper_unless_stopped(reinforce_trains_core):
    images, labels = quadrant_squares(16)
    model = small_ram(reinforce_trains_core=reinforce_trains_core)
    moved, every_weight = weights_moved_by_one_sgd_step(model, images, labels, loss=NoClassificationLoss())
    # The reward is not differentiable: without cross-entropy the classifier never moves.
    reached = set(LEARNED_LOCATION_LAYERS)
    if reinforce_trains_core:
        reached |= set(CLASSIFICATION_LAYERS) - {"classifier"}
    assert moved == {path for path in every_weight if layer_of(path) in reached}


def test_inference_is_deterministic_and_training_samples_follow_the_seed():
    images, _ = quadrant_squares(4)
    model = small_ram(seed=7)
    randomize_weights(model, scale=0.1)
    np.testing.assert_array_equal(numpy(model(images)), numpy(model(images)))
    _, locations = model(images, return_locations=True)
    # The first fixation is the policy's mean in the zero state: tanh of the location bias.
    expected_start = np.tanh(numpy(model.location_mean.bias))
    np.testing.assert_allclose(numpy(locations)[:, 0], np.tile(expected_start, (4, 1)), rtol=1e-6, atol=1e-6)

    first, second = (numpy(model(images, training=True)["locations"]) for _ in range(2))
    assert not np.allclose(first, second)
    assert not np.allclose(first[:, 0], expected_start)  # training samples the first location too

    twin, other = small_ram(seed=7), small_ram(seed=8)
    for clone in (twin, other):
        clone.set_weights(model.get_weights())
    replay = numpy(twin(images, training=True)["locations"])
    np.testing.assert_array_equal(replay, first)
    assert not np.allclose(numpy(other(images, training=True)["locations"]), first)


@pytest.mark.parametrize("initial_location, actions", [("policy", 3), ("center", 2), ("random", 2)])
def test_training_rollout_returns_log_probabilities_and_baselines_of_every_sampled_location(initial_location, actions):
    images, _ = quadrant_squares(4)
    model = small_ram(initial_location=initial_location)
    rollout = model(images, training=True)
    shapes = {key: tuple(value.shape) for key, value in rollout.items()}
    assert shapes == {"logits": (4, 4), "locations": (4, 3, 2), "log_probs": (4, actions), "baselines": (4, actions)}
    # log pi of a 2-D Gaussian with std 0.22 is at most its log density at the mean.
    assert np.all(numpy(rollout["log_probs"]) <= -2 * (np.log(0.22) + 0.5 * np.log(2 * np.pi)) + 1e-5)
    logits, locations = model(images, return_locations=True)
    assert tuple(logits.shape) == (4, 4) and tuple(locations.shape) == (4, 3, 2)
    if initial_location != "policy":  # a fixed start at inference: the image centre
        np.testing.assert_array_equal(numpy(locations)[:, 0], 0.0)
    starts = numpy(rollout["locations"])[:, 0]
    assert np.all(starts == 0.0) if initial_location == "center" else not np.allclose(starts, 0.0)


@pytest.mark.parametrize("location_activation", ["tanh", "hard_tanh", "linear"])
def test_locations_stay_in_the_unit_square(location_activation):
    images, _ = quadrant_squares(4)
    model = small_ram(location_std=3.0, location_activation=location_activation)
    randomize_weights(model, scale=1.0)  # pushes raw policy means far outside [-1, 1]
    for locations in (model(images, return_locations=True)[1], model(images, training=True)["locations"]):
        locations = numpy(locations)
        assert np.all(np.abs(locations) <= 1.0)
    assert np.any(np.abs(locations) == 1.0)  # with std 3 some samples are clipped


def test_glimpse_locations_are_exposed_in_pixels():
    images = np.zeros((2, 20, 28, 1), "float32")
    model = small_ram()
    pixels = numpy(model.glimpse_locations(images, pixels=True))
    normalised = numpy(model.glimpse_locations(images))
    assert pixels.shape == (2, 3, 2)
    np.testing.assert_allclose(pixels[:, 0], [[13.5, 9.5], [13.5, 9.5]])  # (x, y) of the image centre
    np.testing.assert_allclose(pixels, (normalised + 1) * np.array([28, 20]) / 2 - 0.5, rtol=1e-6, atol=1e-5)


def test_random_glimpses_baseline_learns_no_locations():
    images, labels = quadrant_squares(4)
    model = small_ram(random_glimpses=True)
    assert model.location_mean is None and model.baseline is None
    assert not {layer_of(w.path) for w in model.weights} & set(LEARNED_LOCATION_LAYERS)
    # Random at inference too: that is what the paper's baseline measures.
    first, second = (numpy(model(images, return_locations=True)[1]) for _ in range(2))
    assert not np.allclose(first, second) and not np.allclose(first[:, 0], 0.0)
    rollout = model(images, training=True)
    assert set(rollout) == {"logits", "locations"}
    model.compile(optimizer="sgd")
    loss = numpy(model.compute_loss(images, labels, rollout, training=True))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, rollout["logits"])
    assert float(loss) == pytest.approx(float(numpy(cross_entropy)), rel=1e-6)


def test_fit_lowers_the_loss_on_a_tiny_quadrant_dataset_and_the_trained_model_reloads(tmp_path):
    keras.utils.set_random_seed(0)  # over 18 seeds the loss fell to 0.15-0.55 of its start
    images, labels = quadrant_squares(64)
    model = small_ram()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), metrics=["accuracy"])
    before = model.evaluate(images, labels, batch_size=32, verbose=0, return_dict=True)
    history = model.fit(images, labels, batch_size=16, epochs=5, verbose=0)
    after = model.evaluate(images, labels, batch_size=32, verbose=0, return_dict=True)
    assert {"loss", "accuracy", "reward"} <= set(history.history)
    assert all(np.isfinite(history.history["loss"]))
    assert after["loss"] < 0.8 * before["loss"]  # evaluation loss: cross-entropy of the deterministic glimpses
    assert after["reward"] == pytest.approx(after["accuracy"])
    # The compiled, trained model (optimizer state included) reloads in safe mode.
    path = tmp_path / "trained_ram.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.compiled and int(numpy(loaded.optimizer.iterations)) == int(numpy(model.optimizer.iterations))
    np.testing.assert_allclose(numpy(loaded(images[:4])), numpy(model(images[:4])), rtol=1e-6, atol=1e-6)


def test_keras_file_round_trip_gives_identical_inference_outputs_and_locations(tmp_path):
    images, _ = quadrant_squares(4)
    model = small_ram(location_activation="hard_tanh")
    randomize_weights(model, scale=0.1)
    loaded = assert_keras_file_round_trip(model, images, tmp_path)
    assert isinstance(loaded, RecurrentAttentionModel)
    assert loaded.get_config() == model.get_config()
    expected = numpy(model.glimpse_locations(images))
    np.testing.assert_allclose(numpy(loaded.glimpse_locations(images)), expected, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="LiteRT export uses the TensorFlow converter")
def test_ram_exports_to_litert_with_builtin_ops_only(tmp_path):
    import tensorflow as tf

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the litert extra is optional; TF still ships the interpreter
        Interpreter = tf.lite.Interpreter
    model = small_ram(num_scales=3)  # the widest patch (32 px) leaves the 28 px image
    randomize_weights(model, scale=0.05)  # locations away from the centre exercise the sensor
    path = str(tmp_path / "ram.tflite")
    model.export(
        path,
        format="litert",
        input_signature=[keras.InputSpec(shape=(1, 28, 28, 1), dtype="float32")],
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
    )
    images = np.random.default_rng(0).uniform(0.0, 1.0, (1, 28, 28, 1)).astype("float32")
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(logits, numpy(model(images)), rtol=1e-4, atol=1e-5)


def test_bad_arguments_and_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="include_top=False"):
        attention_zoo.get("ram", include_top=False)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['glimpses'\]"):
        attention_zoo.get("ram", glimpses=4)
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        attention_zoo.get("ram", num_classes=1)
    with pytest.raises(ValueError, match="location_activation must be one of"):
        attention_zoo.get("ram", location_activation="sigmoid")
    with pytest.raises(ValueError, match="location_std must be positive"):
        attention_zoo.get("ram", location_std=0.0)
    model = attention_zoo.get("ram", num_classes=10)
    with pytest.raises(ValueError, match="ram expects images with 1 channels"):
        model(np.zeros((1, 60, 60, 3), "float32"))
