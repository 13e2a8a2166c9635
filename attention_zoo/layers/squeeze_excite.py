"""Squeeze-and-Excitation (Hu et al., CVPR 2018): per-channel gates from global context."""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, reduced_channels, register_layer
from attention_zoo.layers.pooling import global_pool
from attention_zoo.utils.counting import dense_macs


@register_layer
class SqueezeExcite(AttentionLayer):
    """GAP -> FC C->C/r -> activation -> FC -> gate -> scale the input channels.

    Args:
        channels: channels of the input feature map.
        reduction: bottleneck ratio r (16 in the paper).
        rd_channels: explicit bottleneck width, overriding `reduction`.
        rd_divisor: 1 for the paper's C // r; 8 for timm's rounded widths.
        use_bias: the official SENet FCs have biases.
        activation, gate_activation: bottleneck and gate nonlinearities.

    Attention: the channel gates, shape (batch, channels).
    """

    def __init__(
        self,
        channels,
        reduction=16,
        rd_channels=None,
        rd_divisor=1,
        use_bias=True,
        activation="relu",
        gate_activation="sigmoid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.reduction = reduction
        self.rd_channels = rd_channels
        self.rd_divisor = rd_divisor
        self.use_bias = use_bias
        self.activation = activation
        self.gate_activation = gate_activation
        self.hidden_channels = reduced_channels(self.channels, reduction, rd_channels, rd_divisor)
        self.reduce = keras.layers.Dense(
            self.hidden_channels, activation=activation, use_bias=use_bias, name="reduce", dtype=self.dtype_policy
        )
        self.expand = keras.layers.Dense(self.channels, use_bias=use_bias, name="expand", dtype=self.dtype_policy)
        self.gate = keras.layers.Activation(gate_activation, name="gate", dtype=self.dtype_policy)

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        self.reduce.build((input_shape[0], self.channels))
        self.expand.build((input_shape[0], self.hidden_channels))

    def attend(self, inputs, training=None):
        pooled = global_pool(inputs)
        gates = self.gate(self.expand(self.reduce(pooled)))
        return inputs * gates[:, None, None, :], gates

    def count_macs(self, input_shape):
        return 2 * dense_macs((1, self.channels), self.hidden_channels)

    def compute_output_shape(self, input_shape):
        if self.return_attention:
            return input_shape, (input_shape[0], self.channels)
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            reduction=self.reduction,
            rd_channels=self.rd_channels,
            rd_divisor=self.rd_divisor,
            use_bias=self.use_bias,
            activation=self.activation,
            gate_activation=self.gate_activation,
        )
        return config
