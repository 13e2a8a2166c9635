"""`grouped_conv` computes exactly what `keras.ops.conv` computes for a grouped kernel, on every
backend, whichever formulation it picks; TensorFlow takes the depthwise rewrite for narrow
groups in a traced graph, and for every group in training (where the grouped kernel's gradient
is far slower) and when called eagerly (where Keras compiles the grouped kernel anew on every
call)."""

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.grouped_conv import NARROW_GROUP_CHANNELS, grouped_conv, uses_depthwise_rewrite
from attention_zoo.layers.tracing import plain_graph

pytestmark = pytest.mark.every_backend

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
    input_shape, groups, out_channels, kernel_size, strides, padding, dilation, training
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
def test_gradients_equal_those_of_the_plain_convolution(dilation):
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


def test_only_tensorflow_rewrites_and_in_a_graph_at_inference_only_narrow_groups():
    on_tensorflow = keras.backend.backend() == "tensorflow"
    narrow = (3, 3, NARROW_GROUP_CHANNELS, 128)
    assert in_a_traced_graph(lambda: uses_depthwise_rewrite((8, 56, 56, 128), narrow)) is on_tensorflow
    assert not in_a_traced_graph(lambda: uses_depthwise_rewrite((8, 7, 7, 1024), WIDE))
    assert not in_a_traced_graph(lambda: uses_depthwise_rewrite((8, 56, 56, 4), (3, 3, 4, 64)))  # not grouped


def test_in_training_every_grouped_convolution_on_tensorflow_is_rewritten():
    on_tensorflow = keras.backend.backend() == "tensorflow"
    assert in_a_traced_graph(lambda: uses_depthwise_rewrite((8, 7, 7, 1024), WIDE, training=True)) is on_tensorflow
    assert not in_a_traced_graph(lambda: uses_depthwise_rewrite((8, 56, 56, 4), (3, 3, 4, 64), training=True))


def test_called_eagerly_every_grouped_convolution_on_tensorflow_is_rewritten():
    on_tensorflow = keras.backend.backend() == "tensorflow"
    assert uses_depthwise_rewrite((8, 7, 7, 1024), WIDE) is on_tensorflow
    assert not uses_depthwise_rewrite((8, 56, 56, 4), (3, 3, 4, 64))  # not grouped


def test_exports_trace_the_grouped_convolution_itself():
    with plain_graph():
        assert not uses_depthwise_rewrite((8, 56, 56, 128), (3, 3, NARROW_GROUP_CHANNELS, 128))
