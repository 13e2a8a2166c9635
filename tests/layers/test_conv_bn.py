"""ConvBN: conv -> BatchNorm (-> ReLU); at inference the BatchNorm is folded into the kernel or
applied to the output as one per-channel scale and bias."""

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.conv_bn import ConvBN
from attention_zoo.layers.tracing import plain_graph
from tests.helpers import check_layer, random_inputs, randomize_weights


def separate_layers(layer, x):
    """The same computation with Keras' own Conv2D and BatchNormalization layers."""
    conv = keras.layers.Conv2D(
        layer.filters, layer.kernel_size, layer.strides, layer.padding, groups=layer.groups, use_bias=False
    )
    bn = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    conv.build(x.shape)
    bn.build(conv.compute_output_shape(x.shape))
    conv.set_weights(layer.conv.get_weights())
    bn.set_weights(layer.bn.get_weights())
    return conv, bn


@pytest.mark.parametrize(
    "input_shape, filters, strides, groups, padding, into_kernel",
    [
        ((2, 9, 9, 8), 16, 1, 1, "same", True),  # kernel 1,152 weights < 2,592 outputs
        ((2, 9, 9, 8), 16, 2, 4, "valid", True),
        ((1, 5, 5, 32), 64, 1, 1, "same", False),  # kernel 18,432 weights > 1,600 outputs
        ((1, 6, 6, 32), 64, 2, 8, "valid", False),
    ],
)
def test_inference_folds_batchnorm_exactly(input_shape, filters, strides, groups, padding, into_kernel):
    """Inference equals conv -> BN(moving statistics), whether the BN scale is folded into the
    kernel or applied to the output: whichever costs fewer multiplies per call."""
    x = random_inputs(input_shape)
    layer = ConvBN(filters, 3, strides=strides, groups=groups, padding=padding, activation="relu")
    layer(x)
    randomize_weights(layer, seed=1)
    assert layer.folds_into_kernel(x.shape) is into_kernel
    conv, bn = separate_layers(layer, x)
    expected = ops.relu(bn(conv(x), training=False))
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-5)


def test_an_unknown_batch_counts_as_one_image():
    layer = ConvBN(64, 3, padding="same")
    layer.build((None, 5, 5, 32))
    assert layer.folds_into_kernel((None, 5, 5, 32)) is layer.folds_into_kernel((1, 5, 5, 32)) is False
    assert layer.folds_into_kernel((16, 5, 5, 32)) is True  # 25,600 outputs > 18,432 weights


def test_exports_always_fold_into_the_kernel():
    layer = ConvBN(64, 3, padding="same")
    layer.build((None, 5, 5, 32))
    with plain_graph():  # the converter freezes the fold into a constant kernel
        assert layer.folds_into_kernel((1, 5, 5, 32)) is True


def test_training_uses_batch_statistics_and_updates_the_moving_ones():
    x = random_inputs((4, 6, 6, 8))
    layer = ConvBN(8, 1)
    layer(x)
    randomize_weights(layer, seed=2)
    conv, bn = separate_layers(layer, x)
    outputs = layer(x, training=True)
    expected = bn(conv(x), training=True)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs), ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer.bn.moving_mean), ops.convert_to_numpy(bn.moving_mean), rtol=1e-5, atol=1e-6
    )


def test_a_frozen_layer_runs_in_inference_mode_like_keras_batchnorm():
    x = random_inputs((4, 6, 6, 8))
    layer = ConvBN(8, 3, padding="same")
    layer(x)
    randomize_weights(layer, seed=3)
    layer.trainable = False
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x, training=True)), ops.convert_to_numpy(layer(x, training=False)), rtol=1e-6
    )


def test_passes_the_full_layer_checks(tmp_path):
    check_layer(ConvBN(8, 3, strides=2, activation="relu"), random_inputs((2, 9, 9, 4)), tmp_path, [(2, 4, 4, 8)])


def test_weights_keep_their_conv_and_bn_names():
    layer = ConvBN(8, 1, name="layer1_0_conv1")
    layer.build((None, 4, 4, 4))
    assert sorted(w.path for w in layer.weights) == [
        "layer1_0_conv1/bn/beta",
        "layer1_0_conv1/bn/gamma",
        "layer1_0_conv1/bn/moving_mean",
        "layer1_0_conv1/bn/moving_variance",
        "layer1_0_conv1/conv/kernel",
    ]
    with pytest.raises(ValueError, match="activation None or 'relu'"):
        ConvBN(8, 1, activation="gelu")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's graph optimiser only")
def test_tensorflow_gets_a_bias_add_that_a_following_residual_add_cannot_absorb():
    """TensorFlow merged an AddV2 bias with the residual add after it into AddN + add; a BiasAdd
    stays with the convolution, which oneDNN then fuses with the add and the ReLU."""
    import tensorflow as tf

    layer = ConvBN(8, 1)
    x, shortcut = random_inputs((2, 6, 6, 8)), random_inputs((2, 6, 6, 8), seed=1)
    layer(x)
    randomize_weights(layer, seed=3)
    block_tail = tf.function(lambda x, shortcut: tf.nn.relu(layer(x, training=False) + shortcut))
    op_types = {op.type for op in block_tail.get_concrete_function(x, shortcut).graph.get_operations()}
    assert "BiasAdd" in op_types
    with plain_graph():  # exports keep a plain add, which the converter folds into CONV_2D
        assert "BiasAdd" not in {op.type for op in tf.function(layer).get_concrete_function(x).graph.get_operations()}
    expected = np.maximum(ops.convert_to_numpy(layer(x)) + ops.convert_to_numpy(shortcut), 0)
    np.testing.assert_allclose(block_tail(x, shortcut).numpy(), expected, rtol=1e-6, atol=1e-6)
