"""Convolution + BatchNorm (+ ReLU) as one layer that folds the BatchNorm at inference.

At inference BatchNorm is an affine map per channel, so conv -> BN equals one convolution
with kernel * gamma / sqrt(var + eps) and bias beta - mean * gamma / sqrt(var + eps). Folding
it turns four passes over the feature map (conv, multiply, add, ReLU) into one: TensorFlow's
graph optimiser fuses convolution, bias and ReLU into a single oneDNN kernel, and TFLite gets
a plain biased convolution. In training (and while the BatchNorm is trainable) the layer runs
conv then BN with batch statistics, exactly as the two separate layers would.

The weights stay where a reader and the weight converters expect them: `<name>/conv/kernel`,
`<name>/bn/{gamma, beta, moving_mean, moving_variance}`.
"""

import keras
from keras import ops

from attention_zoo.layers.base import register_layer
from attention_zoo.utils.counting import conv_macs

BN_EPSILON = 1e-5  # PyTorch's; Keras' 1e-3 shifts logits by a few percent with ported weights
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1


def pytorch_batchnorm(name, dtype=None, **kwargs):
    """BatchNormalization with PyTorch's epsilon and momentum, so ported weights agree."""
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name, dtype=dtype, **kwargs)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


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
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.padding = padding
        self.dilation_rate = _pair(dilation_rate)
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

    def folded_kernel_and_bias(self):
        """The conv kernel and bias equal to conv -> BN with the moving statistics."""
        scale = self.bn.gamma * ops.rsqrt(self.bn.moving_variance + self.bn_epsilon)
        return self.conv.kernel * scale, self.bn.beta - self.bn.moving_mean * scale

    def call(self, inputs, training=None):
        if training and self.bn.trainable:
            outputs = self.bn(self.conv(inputs), training=True)
        else:
            kernel, bias = self.folded_kernel_and_bias()
            outputs = ops.conv(
                inputs,
                ops.cast(kernel, inputs.dtype),
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
            )
            outputs = outputs + ops.cast(bias, outputs.dtype)
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
