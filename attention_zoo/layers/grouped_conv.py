"""Grouped 2-D convolution, computed the fastest exact way on the backend at hand.

TensorFlow's CPU kernel for grouped convolutions slows down sharply as the groups get narrow.
ResNeXt-50 32x4d and SKNet-50 have groups of 4 channels in their first stage, where it ran at
under 1 GMAC/s (batch 8, 56x56x128, 32 groups: 140 ms for 116 M MACs on 2 cores) and took
almost half of resnext50_32x4d's forward time. The same convolution is a depthwise convolution
with channel multiplier m (each input channel of a group convolved with that group's m output
kernels) followed by a sum over the group's input channels: the same multiplies, 3x faster
there. Wider groups (8 and more channels) are faster through the grouped kernel, and JAX and
PyTorch gain nothing from the rewrite, so at inference it is used only on TensorFlow for groups
of at most `NARROW_GROUP_CHANNELS` channels, and never in an export's graph
(`tracing.plain_graph`): LiteRT's XNNPACK runs the grouped convolution itself faster.

Training is another matter. Keras runs TensorFlow's grouped convolutions on the CPU through XLA
(TensorFlow has no CPU gradient for them), and that gradient is slow beyond measure: forward
and backward of one ResNeXt-50 grouped layer at batch 8 took 1.5 to 12 s, the rewrite's 0.1 to
0.16 s. So when training, every grouped convolution on TensorFlow takes the rewrite: a training
step of resnext50_32x4d (batch 8, 96x96) went from 12.6 to 1.5 s and sknet50's from 18.6 to
1.9 s. A gradient taken through an inference-mode call (`training=False` under a tape) still
goes through the grouped kernel's slow one.

Called eagerly (`model(images)` outside a `tf.function`), every grouped convolution takes the
rewrite too. Keras wraps each TensorFlow grouped convolution in a new `tf.function(jit_compile=True)`
on every call, so eagerly each call traces and compiles it again: 60 to 70 ms per convolution
whatever its size. An eager forward of sknet101 on two 64x64 images took 6 to 8 s that way, 1.7
to 1.9 s with the rewrite; resnext50_32x4d at batch 8 and 224x224, 2.8 to 3.0 s against 2.2 s.
Inside a `tf.function` (`predict`, `fit`, exports) the function is traced once and wide groups
keep the grouped kernel.

A dilated depthwise convolution is itself slow on TensorFlow (2.5x its undilated cost). With
stride 1, "same" padding and an odd kernel, a dilation-d convolution equals an undilated one
on each of the d x d interleaved sub-images (the rows and columns that are d apart), which is
how a dilated narrow-group convolution runs here when the image divides by d.

Every path is keras.ops, exact up to float summation order, and differentiable.
"""

import keras
from keras import ops

from attention_zoo.layers.base import pair
from attention_zoo.layers.tracing import tracing_plain_graph

NARROW_GROUP_CHANNELS = 4


def _depthwise_kernel(kernel, groups):
    """(kh, kw, C_in / G, C_out) grouped kernel -> (kh, kw, C_in, C_out / G) depthwise kernel whose
    multiplier j of input channel g * (C_in / G) + i holds output g * (C_out / G) + j's weights."""
    kh, kw, group_in, out_channels = kernel.shape
    group_out = out_channels // groups
    kernel = ops.reshape(kernel, (kh, kw, group_in, groups, group_out))
    return ops.reshape(ops.transpose(kernel, (0, 1, 3, 2, 4)), (kh, kw, groups * group_in, group_out))


def _depthwise_then_sum(inputs, kernel, groups, strides, padding, dilation_rate):
    group_in = kernel.shape[2]
    group_out = kernel.shape[3] // groups
    outputs = ops.depthwise_conv(
        inputs, _depthwise_kernel(kernel, groups), strides=strides, padding=padding, dilation_rate=dilation_rate
    )
    batch, height, width = ops.shape(outputs)[0], outputs.shape[1], outputs.shape[2]
    # Channels come out ordered (group, input channel, multiplier); summing the middle axis
    # leaves (group, multiplier) = the grouped convolution's output order. Kept within 4-D.
    summed = ops.sum(ops.reshape(outputs, (-1, groups, group_in, group_out)), axis=2)
    return ops.reshape(summed, (batch, height, width, groups * group_out))


def _dilated_by_interleaving(inputs, kernel, groups, dilation):
    """Stride 1, "same" padding, sides divisible by `dilation`: undilated on each sub-image."""
    batch, height, width, channels = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2], inputs.shape[3]
    rows, cols = height // dilation, width // dilation
    sub = ops.reshape(inputs, (-1, rows, dilation, cols, dilation, channels))
    sub = ops.reshape(ops.transpose(sub, (0, 2, 4, 1, 3, 5)), (-1, rows, cols, channels))
    outputs = _depthwise_then_sum(sub, kernel, groups, 1, "same", 1)
    out_channels = outputs.shape[-1]
    outputs = ops.reshape(outputs, (-1, dilation, dilation, rows, cols, out_channels))
    return ops.reshape(ops.transpose(outputs, (0, 3, 1, 4, 2, 5)), (batch, height, width, out_channels))


def _executing_eagerly():
    import tensorflow as tf

    return tf.executing_eagerly()


def uses_depthwise_rewrite(input_shape, kernel_shape, training=False):
    """Whether `grouped_conv` computes this convolution as depthwise-then-sum."""
    in_channels, group_in = input_shape[-1], kernel_shape[2]
    return (
        keras.backend.backend() == "tensorflow"
        and not tracing_plain_graph()
        and in_channels is not None
        and group_in < in_channels
        and (bool(training) or group_in <= NARROW_GROUP_CHANNELS or _executing_eagerly())
    )


def grouped_conv(inputs, kernel, strides=1, padding="valid", dilation_rate=1, training=False):
    """`keras.ops.conv` for NHWC inputs and a (kh, kw, C_in / groups, C_out) kernel, groups
    inferred as ops.conv does; on TensorFlow, narrow groups, and every group when `training` or
    when called eagerly, take the depthwise rewrite."""
    if not uses_depthwise_rewrite(inputs.shape, kernel.shape, training):
        return ops.conv(inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate)
    groups = inputs.shape[-1] // kernel.shape[2]
    strides, dilation = pair(strides), pair(dilation_rate)
    height, width = inputs.shape[1], inputs.shape[2]
    if (
        dilation[0] == dilation[1] > 1
        and strides == (1, 1)
        and padding == "same"
        and kernel.shape[0] % 2 == 1  # odd kernels pad "same" symmetrically, sub-images alike
        and kernel.shape[1] % 2 == 1
        and height is not None
        and width is not None
        and height % dilation[0] == 0
        and width % dilation[0] == 0
    ):
        return _dilated_by_interleaving(inputs, kernel, groups, dilation[0])
    return _depthwise_then_sum(inputs, kernel, groups, strides, padding, dilation)
