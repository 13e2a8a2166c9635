"""Checks that every layer and every model of the zoo must pass, shared so that each test
file states *what* it covers in a few lines (keras-hub's habit).

All checks are backend-agnostic: they use public Keras APIs only, so the same test runs
under KERAS_BACKEND=tensorflow, jax and torch.
"""

import functools
import json

import keras
import numpy as np
import pytest

import attention_zoo


# The ResNet-family models; their contract, export and MAC tests share one built model.
RESNETS = tuple(name for name in attention_zoo.list_models() if attention_zoo.model_info(name).family == "resnet")


@functools.lru_cache(maxsize=1)
def registered_model(name):
    """`attention_zoo.get(name)` with its defaults, built once per test process for the tests
    that only read it: a large ResNet takes 5-15 s to build, and its contract, export and MAC
    tests each built it again. Mark those tests with `shares_registered_model(name)`."""
    return attention_zoo.get(name)


def shares_registered_model(name):
    """Under `pytest -n N --dist loadgroup` (tests/run.sh), the tests that carry this mark for
    `name` run one after the other on one worker, so `registered_model(name)` builds once."""
    return pytest.mark.xdist_group(f"registered_model:{name}")


def random_inputs(shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype("float32")


def randomize_weights(model, seed=0, scale=0.2):
    """Replaces every weight with noise, so zero-initialised gammas or projections (which
    block gradients at initialisation by design) do not hide unconnected weights."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if not np.issubdtype(np.dtype(variable.dtype), np.floating):
            continue
        name = variable.path.rsplit("/", 1)[-1]
        if name == "moving_variance":
            value = rng.uniform(0.5, 1.5, size=variable.shape)
        else:
            value = rng.normal(0.0, scale, size=variable.shape)
        variable.assign(value.astype(variable.dtype))


def as_list(outputs):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(outputs)]


def wrap(layer, inputs):
    """A functional model around `layer` for the given example inputs (a list for several)."""
    examples = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    symbolic = [keras.Input(x.shape[1:], batch_size=None) for x in examples]
    outputs = layer(symbolic if isinstance(inputs, (list, tuple)) else symbolic[0])
    return keras.Model(symbolic if isinstance(inputs, (list, tuple)) else symbolic[0], outputs)


def assert_allclose_structures(actual, expected, rtol=1e-5, atol=1e-5):
    actual, expected = as_list(actual), as_list(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def _as_read_from_json(config):
    # A saved config comes back with lists where get_config() gave tuples.
    return json.loads(json.dumps(config))


def assert_keras_file_round_trip(model, inputs, tmp_path, expected=None):
    """The config and `.keras` round trips in one: the file reloads in safe mode into a model
    rebuilt from its saved config (each layer's `from_config`, through JSON, which is stricter
    than `from_config(get_config())` in memory), whose config equals the original's and whose
    outputs are identical (`expected`, or the model's own). Returns the reloaded model."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert _as_read_from_json(loaded.get_config()) == _as_read_from_json(model.get_config())
    expected = model(inputs, training=False) if expected is None else expected
    assert_allclose_structures(loaded(inputs, training=False), expected, rtol=1e-6, atol=1e-6)
    return loaded


def assert_gradients_reach_every_weight(model, inputs, seed=0, biases_before_batchnorm=()):
    """One SGD step on a random linear loss moves every trainable weight.

    A weight that does not move received a zero gradient: it is not connected to the output.
    The one exception is by design: a bias followed by a BatchNorm in training mode (the batch
    mean cancels it). Name such weights, by path suffix, in `biases_before_batchnorm`.
    """
    randomize_weights(model, seed=seed)
    first_output = keras.tree.flatten(model(inputs, training=False))[0]
    projection = random_inputs(tuple(first_output.shape), seed=seed + 1)
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]

    class ProjectionLoss(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return keras.ops.mean(y_pred * y_true)

    n_outputs = len(model.outputs)
    targets = [projection] + [np.zeros(t.shape[1:], "float32")[None].repeat(len(first_output), 0) for t in model.outputs[1:]]
    losses = [ProjectionLoss()] + [None] * (n_outputs - 1)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=losses if n_outputs > 1 else losses[0])
    model.train_on_batch(inputs, targets if n_outputs > 1 else targets[0])
    frozen = [
        w.path
        for w, old in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), old)
    ]
    unexpected = [path for path in frozen if not path.endswith(tuple(biases_before_batchnorm))]
    assert not unexpected, f"no gradient reached: {unexpected}"


def check_layer(layer, inputs, tmp_path, expected_shapes=None, biases_before_batchnorm=()):
    """The full layer specification: shapes, config and `.keras` round trip, gradients."""
    model = wrap(layer, inputs)
    outputs = model(inputs)
    if expected_shapes is not None:
        assert [tuple(o.shape) for o in keras.tree.flatten(outputs)] == [tuple(s) for s in expected_shapes]
    for value in as_list(outputs):
        assert np.all(np.isfinite(value))
    assert_keras_file_round_trip(model, inputs, tmp_path, expected=outputs)
    assert_gradients_reach_every_weight(model, inputs, biases_before_batchnorm=biases_before_batchnorm)
    return model


def check_model_contract(model, inputs, tmp_path, expected_output_shape):
    """What every zoo model guarantees: output shape, finite outputs, and the config and
    `.keras` round trip with identical outputs."""
    outputs = model(inputs, training=False)
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(outputs)))
    assert_keras_file_round_trip(model, inputs, tmp_path, expected=outputs)


def check_mixed_precision(build, inputs):
    """Under mixed_float16 the model computes in float16 and still gives finite outputs."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build()
        outputs = keras.ops.convert_to_numpy(model(inputs, training=False))
        assert np.all(np.isfinite(outputs.astype("float32")))
        convs = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
        assert convs and all(layer.compute_dtype == "float16" for layer in convs)
        assert all(w.dtype == "float32" for w in model.trainable_weights)
        return model
    finally:
        keras.mixed_precision.set_global_policy("float32")
