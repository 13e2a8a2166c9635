"""Dual Attention Network modules (Fu et al., CVPR 2019): position and channel attention.

Both follow the official code (junfu1115/DANet, `PAM_Module` and `CAM_Module`), written for
channels-last tensors: where the code multiplies (C, N) matrices, these layers multiply the
transposed (N, C) ones, with the same result.
"""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, register_layer
from attention_zoo.layers.similarity import stable_softmax
from attention_zoo.utils.counting import conv_macs


def _gamma(layer):
    return layer.add_weight(shape=(1,), initializer="zeros", name="gamma")


@register_layer
class PositionAttention(AttentionLayer):
    """Position attention module (PAM): every position attends to all positions.

    Q, K = 1x1 convs to C // reduction channels, V = 1x1 conv to C (all with bias);
    A = softmax_keys(Q K^T) over the N = H * W positions; out = gamma * (A V) + x, with the
    scalar gamma initialised to 0 (the module starts as the identity). K's bias is kept for
    parity with the official parameters, though the softmax over the keys cancels it (it adds
    the same q . b to a whole row), so it never gets a gradient.

    Args:
        channels: channels C of the input feature map.
        reduction: C // reduction query/key channels (8 in the paper).

    Attention: (batch, N, N), row i the weights of query position i over the keys.
    MACs: Q, K (2 N C C') and V (N C C) convolutions, Q K^T (N N C') and A V (N N C).
    """

    def __init__(self, channels, reduction=8, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.reduction = int(reduction)
        self.key_channels = max(1, self.channels // self.reduction)
        self.query_conv = keras.layers.Conv2D(self.key_channels, 1, name="query_conv", dtype=self.dtype_policy)
        self.key_conv = keras.layers.Conv2D(self.key_channels, 1, name="key_conv", dtype=self.dtype_policy)
        self.value_conv = keras.layers.Conv2D(self.channels, 1, name="value_conv", dtype=self.dtype_policy)

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        for layer in (self.query_conv, self.key_conv, self.value_conv):
            layer.build(input_shape)
        self.gamma = _gamma(self)

    def attend(self, inputs, training=None):
        _, height, width, channels = ops.shape(inputs)
        positions = height * width
        queries = ops.reshape(self.query_conv(inputs), (-1, positions, self.key_channels))
        keys = ops.reshape(self.key_conv(inputs), (-1, positions, self.key_channels))
        values = ops.reshape(self.value_conv(inputs), (-1, positions, channels))
        attention = stable_softmax(ops.matmul(queries, ops.swapaxes(keys, -1, -2)), axis=-1)
        out = ops.reshape(ops.matmul(attention, values), (-1, height, width, channels))
        return self.gamma * out + inputs, attention

    def count_macs(self, input_shape):
        positions = input_shape[1] * input_shape[2]
        shape = (1,) + tuple(input_shape[1:3])
        convs = 2 * conv_macs(shape + (self.key_channels,), (1, 1), self.channels, self.key_channels)
        convs += conv_macs(shape + (self.channels,), (1, 1), self.channels, self.channels)
        return convs + positions * positions * (self.key_channels + self.channels)

    def compute_output_shape(self, input_shape):
        if not self.return_attention:
            return input_shape
        height, width = input_shape[1], input_shape[2]
        positions = None if height is None or width is None else height * width
        return input_shape, (input_shape[0], positions, positions)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, reduction=self.reduction)
        return config


@register_layer
class ChannelSelfAttention(AttentionLayer):
    """Channel attention module (CAM): every channel attends to all channels.

    With X the (C, N) channel-by-position matrix: energy = X X^T (C x C),
    energy_new = max(energy, over the last axis, keepdims) - energy, A = softmax(energy_new)
    over the last axis, out = gamma * (A X) + x, with the scalar gamma initialised to 0.
    There are no projections. The energy sums over all positions, so it is computed in
    float32 (float16 would overflow on large feature maps).

    Args:
        channels: optional; when given, inputs of another channel count are rejected.

    Attention: (batch, C, C).
    MACs: X X^T and A X, 2 N C^2.
    """

    def __init__(self, channels=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels) if channels is not None else None

    def build(self, input_shape):
        if self.channels is not None:
            check_channels(self, input_shape, self.channels)
        elif len(input_shape) != 4:
            check_channels(self, input_shape, input_shape[-1])
        self.gamma = _gamma(self)

    def attend(self, inputs, training=None):
        _, height, width, channels = ops.shape(inputs)
        features = ops.reshape(inputs, (-1, height * width, channels))
        wide = ops.cast(features, "float32")
        energy = ops.matmul(ops.swapaxes(wide, -1, -2), wide)
        energy = ops.max(energy, axis=-1, keepdims=True) - energy
        attention = ops.cast(ops.softmax(energy, axis=-1), features.dtype)
        out = ops.reshape(ops.matmul(features, ops.swapaxes(attention, -1, -2)), (-1, height, width, channels))
        return self.gamma * out + inputs, attention

    def count_macs(self, input_shape):
        return 2 * input_shape[1] * input_shape[2] * input_shape[3] ** 2

    def compute_output_shape(self, input_shape):
        if not self.return_attention:
            return input_shape
        return input_shape, (input_shape[0], input_shape[-1], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["channels"] = self.channels
        return config
