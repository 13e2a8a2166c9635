"""Grouped 2-D convolution, computed the fastest exact way on the backend at hand.

On TensorFlow, Keras' `ops.conv` runs every grouped convolution through XLA (its source says
grouped convolutions are broken on the CPU without it), and XLA's CPU code for them is slow: at
batch 8, 56x56x128 in 32 groups of 4 channels took 63-67 ms, and ResNeXt-50's wider groups
2-13 ms each. TensorFlow's own kernels now compute grouped convolutions. With oneDNN (its default
on x86-64 Linux) they do so 2-14x faster than that, forward and backward, and in graphs and
eagerly alike: 4.6, 3.1, 2.4 and 2.0 ms for the four stages of ResNeXt-50 32x4d (batch 8), and
forward plus both gradients 21 ms against 72 ms for the depthwise rewrite below at stage 1,
9 against 87 ms at stage 2. So on TensorFlow `grouped_conv` calls `tf.nn.convolution` itself
wherever a probe finds that TensorFlow's kernels take a grouped convolution and its gradients in
that dtype (`tensorflow_runs_grouped_kernels`). oneDNN has no float16 gradient there, and
without oneDNN (TF_ENABLE_ONEDNN_OPTS=0) TensorFlow has no grouped gradient at all and a slower
forward kernel; those cases keep the paths below.

Without TensorFlow's kernels, narrow groups were the slow case: a grouped convolution equals a
depthwise convolution with channel multiplier m (each input channel of a group convolved with
that group's m output kernels) followed by a sum over the group's input channels, the same
multiplies, about 3x faster than Keras' XLA path for groups of 4 (`NARROW_GROUP_CHANNELS`);
wider groups were faster through XLA. When training, every group takes the rewrite: the XLA
gradient took 1.5 to 12 s per ResNeXt-50 layer at batch 8, the rewrite's 0.1 to 0.16 s. Called
eagerly, every group takes it too: Keras wraps each grouped convolution in a new
`tf.function(jit_compile=True)` on every call, 60 to 70 ms of compiling per convolution.

A dilated depthwise convolution is itself slow on TensorFlow (2.5x its undilated cost). With
stride 1, "same" padding and an odd kernel, a dilation-d convolution equals an undilated one
on each of the d x d interleaved sub-images (the rows and columns that are d apart), which is
how a dilated convolution runs in the rewrite when the image divides by d.

None of this reaches an export's graph (`tracing.plain_graph`), which keeps `ops.conv`: LiteRT's
XNNPACK runs the grouped convolution itself faster. JAX and PyTorch take `ops.conv`, already
fast there. Every path is exact up to float summation order, and differentiable.
"""

import functools

import keras
from keras import ops

from attention_zoo.layers.base import pair
from attention_zoo.layers.tracing import tracing_for_tensorflow_kernels

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


@functools.cache
def tensorflow_runs_grouped_kernels(dtype="float32"):
    """Whether TensorFlow's own CPU kernels compute a grouped convolution and both its gradients
    in `dtype`, eagerly and in a graph (which can differ): a probe on a 3x3 image, run once per
    dtype, eagerly even while tracing. It calls the gradient kernels by name, as a gradient tape
    records nothing inside `init_scope`."""
    import tensorflow as tf

    def convolve_and_differentiate(images, kernel):
        strides = [1, 1, 1, 1]
        outputs = tf.raw_ops.Conv2D(input=images, filter=kernel, strides=strides, padding="SAME")
        image_gradient = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(images), filter=kernel, out_backprop=outputs, strides=strides, padding="SAME"
        )
        kernel_gradient = tf.raw_ops.Conv2DBackpropFilter(
            input=images, filter_sizes=tf.shape(kernel), out_backprop=outputs, strides=strides, padding="SAME"
        )
        return image_gradient, kernel_gradient

    with tf.init_scope(), tf.device("/CPU:0"):
        # Arguments, not constants: the graph optimiser would fold a constant probe away.
        images, kernel = tf.ones((1, 3, 3, 4), dtype), tf.ones((3, 3, 2, 4), dtype)
        try:
            convolve_and_differentiate(images, kernel)
            tf.function(convolve_and_differentiate)(images, kernel)
        except tf.errors.OpError:
            return False
    return True


def formulation(input_shape, kernel_shape, dtype="float32", training=False):
    """How `grouped_conv` computes this convolution: "tensorflow" (TensorFlow's own grouped
    kernels), "depthwise" (depthwise then sum) or "conv" (`keras.ops.conv`)."""
    in_channels, group_in = input_shape[-1], kernel_shape[2]
    grouped = in_channels is not None and group_in < in_channels
    if not (grouped and tracing_for_tensorflow_kernels()):
        return "conv"
    if tensorflow_runs_grouped_kernels(keras.backend.standardize_dtype(dtype)):
        return "tensorflow"
    if bool(training) or group_in <= NARROW_GROUP_CHANNELS or _executing_eagerly():
        return "depthwise"
    return "conv"


def grouped_conv(inputs, kernel, strides=1, padding="valid", dilation_rate=1, training=False):
    """`keras.ops.conv` for NHWC inputs and a (kh, kw, C_in / groups, C_out) kernel, groups
    inferred as ops.conv does, computed as `formulation` says."""
    form = formulation(inputs.shape, kernel.shape, inputs.dtype, training)
    strides, dilation = pair(strides), pair(dilation_rate)
    if form == "conv":
        return ops.conv(inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    if form == "tensorflow":
        import tensorflow as tf

        return tf.nn.convolution(inputs, kernel, strides=strides, padding=padding.upper(), dilations=dilation)
    groups = inputs.shape[-1] // kernel.shape[2]
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
