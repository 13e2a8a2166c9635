"""Convolution + BatchNorm (+ ReLU) as one layer that folds the BatchNorm at inference.

At inference BatchNorm is an affine map per channel, so conv -> BN equals a convolution
followed by one per-channel scale gamma / sqrt(var + eps) and bias beta - mean * scale. The
scale goes into the kernel or onto the output, whichever takes fewer multiplies on this call
(`ConvBN.folds_into_kernel`): the statistics are variables, so a kernel fold is redone on every
call, which for the multi-million-weight kernels of late stages costs more than scaling their
small maps. Either way this replaces Keras' separate BN pass; TensorFlow's graph optimiser fuses
the bias (and ReLU) into the convolution, and the TFLite converter, which sees the weights as
constants, folds the output scale into the kernel, so a .tflite file gets plain biased
convolutions. In training (and while the BatchNorm is trainable) the layer runs conv then BN
with batch statistics, exactly as the two separate layers would.

The weights stay where a reader and the weight converters expect them: `<name>/conv/kernel`,
`<name>/bn/{gamma, beta, moving_mean, moving_variance}`.
"""

import math

import keras
from keras import ops

from attention_zoo.layers.base import pair, register_layer
from attention_zoo.layers.grouped_conv import grouped_conv
from attention_zoo.layers.tracing import tracing_for_tensorflow_kernels, tracing_plain_graph
from attention_zoo.utils.counting import conv_macs

BN_EPSILON = 1e-5  # PyTorch's; Keras' 1e-3 shifts logits by a few percent with ported weights
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1


def pytorch_batchnorm(name, dtype=None, **kwargs):
    """BatchNormalization with PyTorch's epsilon and momentum, so ported weights agree."""
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name, dtype=dtype, **kwargs)


def uses_batch_statistics(bn, training):
    """Whether `bn(x, training=training)` normalises with the batch's statistics, as Keras'
    BatchNormalization decides: in training, unless the layer is frozen."""
    return bool(training) and bn.trainable


def folded_batchnorm(bn):
    """(scale, bias) per channel such that `x * scale + bias` is `bn` at inference, i.e. with
    its moving statistics; either factor is 1 or 0 where the layer has no gamma or beta."""
    scale = ops.rsqrt(bn.moving_variance + bn.epsilon)
    if bn.scale:
        scale = bn.gamma * scale
    bias = -bn.moving_mean * scale
    if bn.center:
        bias = bn.beta + bias
    return scale, bias


def add_channel_bias(outputs, bias):
    """`outputs + bias` over the last axis; a BiasAdd on TensorFlow outside exports.

    TensorFlow's graph optimiser fuses a BiasAdd into the convolution before it, and with
    oneDNN a residual add and ReLU after it as well: a plain ResNet block's last convolution,
    bias, residual add and ReLU run as one op. An AddV2 bias it fuses too, unless an add
    follows: then it merged the bias add with the residual add into an AddN plus an add, two
    passes over the block's output and a separate ReLU, which made resnet50 4 % slower (batch
    8, 224x224, both forms traced and timed in one process)."""
    if tracing_for_tensorflow_kernels():
        import tensorflow as tf

        return tf.nn.bias_add(outputs, bias)
    return outputs + bias


@register_layer
class ConvBN(keras.layers.Layer):
    """Conv2D without bias, BatchNormalization and an optional ReLU.

    Args:
        filters, kernel_size, strides, padding, dilation_rate, groups: as keras Conv2D.
        activation: None or "relu".
        zero_gamma: initialise gamma to 0 (a residual branch then starts as the identity).
        bn_epsilon, bn_momentum: PyTorch's defaults.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        groups=1,
        activation=None,
        zero_gamma=False,
        bn_epsilon=BN_EPSILON,
        bn_momentum=BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if activation not in (None, "relu"):
            raise ValueError(f"ConvBN supports activation None or 'relu'; got {activation!r}")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size)
        self.strides = pair(strides)
        self.padding = padding
        self.dilation_rate = pair(dilation_rate)
        self.groups = int(groups)
        self.activation = activation
        self.zero_gamma = bool(zero_gamma)
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.conv = keras.layers.Conv2D(
            filters,
            self.kernel_size,
            strides=self.strides,
            padding=padding,
            dilation_rate=self.dilation_rate,
            groups=groups,
            use_bias=False,
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = keras.layers.BatchNormalization(
            epsilon=bn_epsilon,
            momentum=bn_momentum,
            gamma_initializer="zeros" if zero_gamma else "ones",
            name="bn",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def folds_into_kernel(self, input_shape):
        """Whether inference scales the kernel (True) or the conv output (False) by the BN scale.

        The statistics are variables, so the fold is recomputed on every call: one multiply per
        kernel weight, against one per output value for scaling the output instead. Whichever is
        fewer wins. The late stages of a ResNet-50 have kernels of up to 2.4 M weights on 7x7
        maps; folding them on every call made the whole network 5-9 % slower at batch 8 than
        scaling their outputs. An unknown batch counts as one image. Exports always fold into
        the kernel (`tracing.plain_graph`), where the converter makes the fold a constant."""
        if tracing_plain_graph():
            return True
        batch = input_shape[0] or 1
        outputs = batch * math.prod(self.compute_output_shape(input_shape)[1:])
        return math.prod(self.conv.kernel.shape) <= outputs

    def _convolve(self, inputs, kernel, training):
        return grouped_conv(
            inputs,
            ops.cast(kernel, inputs.dtype),
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            training=training,
        )

    def call(self, inputs, training=None):
        if uses_batch_statistics(self.bn, training):
            outputs = self.bn(self._convolve(inputs, self.conv.kernel, training), training=True)
        else:
            scale, bias = folded_batchnorm(self.bn)
            if self.folds_into_kernel(inputs.shape):
                outputs = self._convolve(inputs, self.conv.kernel * scale, training)
            else:
                outputs = self._convolve(inputs, self.conv.kernel, training) * ops.cast(scale, inputs.dtype)
            outputs = add_channel_bias(outputs, ops.cast(bias, outputs.dtype))
        if self.activation == "relu":
            outputs = ops.relu(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def count_macs(self, input_shape):
        output_shape = self.compute_output_shape(input_shape)
        return conv_macs(output_shape, self.kernel_size, input_shape[-1], self.filters, self.groups)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            activation=self.activation,
            zero_gamma=self.zero_gamma,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
        )
        return config
