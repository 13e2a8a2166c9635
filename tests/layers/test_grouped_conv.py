"""`grouped_conv` computes exactly what `keras.ops.conv` computes for a grouped kernel, on every
backend, whichever formulation it picks. On TensorFlow it runs TensorFlow's own grouped kernels
where they take the convolution and its gradients in the dtype at hand (oneDNN's, TensorFlow's
default on x86-64); elsewhere it takes the depthwise rewrite for narrow groups in a traced
graph, and for every group in training (where Keras' XLA gradient is far slower) and when called
eagerly (where Keras compiles the grouped kernel anew on every call)."""

import os
import platform

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers import grouped_conv as grouped_conv_module
from attention_zoo.layers.grouped_conv import (
    NARROW_GROUP_CHANNELS,
    formulation,
    grouped_conv,
    tensorflow_runs_grouped_kernels,
)
from attention_zoo.layers.tracing import plain_graph

pytestmark = pytest.mark.every_backend


@pytest.fixture(params=["as_found", "without"], ids=["tensorflow_kernels_as_found", "without_tensorflow_kernels"])
def tensorflow_kernels(request, monkeypatch):
    """Runs a test with TensorFlow's grouped kernels as this machine has them, and again as on a
    TensorFlow without them (oneDNN off), where the rewrite and Keras' path do the work."""
    if request.param == "without":
        monkeypatch.setattr(grouped_conv_module, "tensorflow_runs_grouped_kernels", lambda dtype="float32": False)
    return request.param

CASES = [
    # (input shape, groups, output channels, kernel size, strides, padding, dilation)
    ((2, 8, 8, 16), 4, 16, 3, 1, "same", 1),  # groups of 4: SKNet/ResNeXt's first stage
    ((2, 8, 8, 16), 8, 24, 3, 1, "same", 1),  # groups of 2, 3 outputs per group
    ((2, 9, 7, 16), 4, 16, 3, 2, "valid", 1),  # strided, odd sides
    ((1, 8, 8, 16), 4, 16, 3, 1, "same", 2),  # dilated: interleaved sub-images
    ((1, 8, 12, 16), 4, 8, 3, 1, "same", 4),  # dilation 4, 2 outputs per group
    ((1, 9, 9, 16), 4, 16, 3, 1, "same", 2),  # dilated, sides not divisible: dilated depthwise
    ((1, 8, 8, 16), 4, 16, 3, 1, "valid", 2),
    ((2, 6, 6, 32), 4, 32, 3, 1, "same", 1),  # groups of 8: the grouped kernel in a traced graph
]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("input_shape, groups, out_channels, kernel_size, strides, padding, dilation", CASES)
def test_equals_the_plain_grouped_convolution(
    input_shape, groups, out_channels, kernel_size, strides, padding, dilation, training, tensorflow_kernels
):
    rng = np.random.default_rng(0)
    images = rng.normal(size=input_shape).astype("float32")
    kernel = rng.normal(size=(kernel_size, kernel_size, input_shape[-1] // groups, out_channels)).astype("float32")

    result = grouped_conv(
        images, kernel, strides=strides, padding=padding, dilation_rate=dilation, training=training
    )
    expected = ops.conv(images, kernel, strides=strides, padding=padding, dilation_rate=dilation)

    assert tuple(result.shape) == tuple(expected.shape)
    np.testing.assert_allclose(ops.convert_to_numpy(result), ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dilation", [1, 2])
def test_gradients_equal_those_of_the_plain_convolution(dilation, tensorflow_kernels):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(1, 8, 8, 16)).astype("float32")
    kernel = rng.normal(size=(3, 3, 4, 16)).astype("float32")
    channel_weights = np.square(np.arange(16, dtype="float32") - 7.5)  # weighs channels unequally

    def loss(conv):
        def weighted_sum(x, k):
            outputs = conv(x, k, padding="same", dilation_rate=dilation)
            return ops.sum(outputs * ops.convert_to_tensor(channel_weights))

        return weighted_sum

    got = _gradients(loss(grouped_conv), images, kernel)
    expected = _gradients(loss(ops.conv), images, kernel)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-3)


def _gradients(function, x, k):
    """d function / d (x, k) on the current backend, as numpy arrays."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x, k = tf.constant(x), tf.constant(k)
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            value = function(x, k)
        return [g.numpy() for g in tape.gradient(value, [x, k])]
    if backend == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(function, argnums=(0, 1))(x, k)]
    import torch

    x, k = (torch.tensor(a, requires_grad=True) for a in (x, k))
    return [g.detach().numpy() for g in torch.autograd.grad(function(x, k), [x, k])]


def in_a_traced_graph(check):
    """`check()` as TensorFlow evaluates it while tracing a graph (`predict`, `fit`, exports);
    the other backends have no such distinction."""
    if keras.backend.backend() != "tensorflow":
        return check()
    import tensorflow as tf

    results = []

    def trace():
        results.append(check())
        return tf.constant(0)

    tf.function(trace).get_concrete_function()
    return results[0]


WIDE = (3, 3, 32, 1024)  # ResNeXt-50's last stage: 32 groups of 32 channels
NARROW = (3, 3, NARROW_GROUP_CHANNELS, 128)  # its first stage: 32 groups of 4
NOT_GROUPED = ((8, 56, 56, 4), (3, 3, 4, 64))


def _every_call(dtype="float32"):
    """The formulation for narrow and wide groups, at inference and in training in a traced
    graph, and called eagerly."""
    return {
        formulation((8, 56, 56, 128), NARROW, dtype),
        in_a_traced_graph(lambda: formulation((8, 56, 56, 128), NARROW, dtype)),
        in_a_traced_graph(lambda: formulation((8, 7, 7, 1024), WIDE, dtype)),
        in_a_traced_graph(lambda: formulation((8, 7, 7, 1024), WIDE, dtype, training=True)),
        formulation((8, 7, 7, 1024), WIDE, dtype),
    }


def test_tensorflow_runs_its_own_grouped_kernels_wherever_they_take_gradients_too():
    if keras.backend.backend() != "tensorflow":
        assert _every_call() == {"conv"}
        return
    for dtype in ("float32", "bfloat16", "float16"):
        if tensorflow_runs_grouped_kernels(dtype):
            assert _every_call(dtype) == {"tensorflow"}
        else:
            assert "tensorflow" not in _every_call(dtype)


def test_onednn_takes_grouped_convolutions_and_their_gradients_except_in_float16():
    """Why the probe exists: TensorFlow's x86-64 builds use oneDNN unless TF_ENABLE_ONEDNN_OPTS=0,
    and oneDNN has grouped kernels in float32 and bfloat16, but no float16 gradient on the CPU."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a TensorFlow kernel probe")
    if platform.machine() not in ("x86_64", "AMD64") or os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        pytest.skip("oneDNN is TensorFlow's default on x86-64 only")
    assert tensorflow_runs_grouped_kernels("float32") and tensorflow_runs_grouped_kernels("bfloat16")
    assert not tensorflow_runs_grouped_kernels("float16")


def test_without_tensorflow_kernels_narrow_groups_training_and_eager_calls_take_the_rewrite(monkeypatch):
    monkeypatch.setattr(grouped_conv_module, "tensorflow_runs_grouped_kernels", lambda dtype="float32": False)
    on_tensorflow = keras.backend.backend() == "tensorflow"
    rewritten = "depthwise" if on_tensorflow else "conv"
    assert in_a_traced_graph(lambda: formulation((8, 56, 56, 128), NARROW)) == rewritten
    assert in_a_traced_graph(lambda: formulation((8, 7, 7, 1024), WIDE)) == "conv"
    assert in_a_traced_graph(lambda: formulation((8, 7, 7, 1024), WIDE, training=True)) == rewritten
    assert formulation((8, 7, 7, 1024), WIDE) == rewritten  # eagerly


def test_a_convolution_that_is_not_grouped_is_keras_own():
    assert in_a_traced_graph(lambda: formulation(*NOT_GROUPED)) == "conv"
    assert in_a_traced_graph(lambda: formulation(*NOT_GROUPED, training=True)) == "conv"
    assert formulation(*NOT_GROUPED) == "conv"


def test_exports_trace_the_grouped_convolution_itself():
    with plain_graph():
        assert formulation((8, 56, 56, 128), NARROW) == "conv"
        assert formulation((8, 7, 7, 1024), WIDE, training=True) == "conv"
