"""Efficient Channel Attention (Wang et al., CVPR 2020): SE without the bottleneck, a 1-D
convolution across neighbouring channels instead of two fully connected layers."""

import math

from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, register_layer
from attention_zoo.layers.pooling import global_pool


def adaptive_kernel_size(channels, gamma=2, b=1):
    """k = |log2(C) / gamma + b / gamma|, rounded up to the next odd number (ECA eq. 12)."""
    k = int(abs((math.log2(channels) + b) / gamma))
    return k if k % 2 else k + 1


@register_layer
class EfficientChannelAttention(AttentionLayer):
    """GAP -> 1-D conv over channels (kernel k, no bias) -> sigmoid -> scale.

    Args:
        channels: channels of the input.
        kernel_size: odd k; `None` picks it from `channels` with the paper's formula.

    Attention: the channel gates, shape (batch, channels).
    """

    def __init__(self, channels, kernel_size=None, gamma=2, b=1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.gamma = gamma
        self.b = b
        self.kernel_size = int(kernel_size or adaptive_kernel_size(self.channels, gamma, b))
        if self.kernel_size % 2 == 0:
            raise ValueError(f"EfficientChannelAttention needs an odd kernel_size; got {self.kernel_size}")

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        # Shape (k, 1, 1): a 1-D convolution kernel for ops.conv over (batch, channels, 1).
        self.kernel = self.add_weight(
            shape=(self.kernel_size, 1, 1), initializer="glorot_uniform", name="kernel"
        )

    def attend(self, inputs, training=None):
        # Reshapes, not [:, :, None] / [:, :, 0] indexing: LiteRT turns those into strided
        # slices, which XNNPACK leaves undelegated, splitting the graph at every block.
        pooled = ops.reshape(global_pool(inputs), (-1, self.channels, 1))
        logits = ops.conv(pooled, ops.cast(self.kernel, pooled.dtype), padding="same")
        gates = ops.sigmoid(ops.reshape(logits, (-1, self.channels)))
        return inputs * ops.reshape(gates, (-1, 1, 1, self.channels)), gates

    def count_macs(self, input_shape):
        return self.channels * self.kernel_size

    def compute_output_shape(self, input_shape):
        if self.return_attention:
            return input_shape, (input_shape[0], self.channels)
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, kernel_size=self.kernel_size, gamma=self.gamma, b=self.b)
        return config
