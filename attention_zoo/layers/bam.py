"""Bottleneck Attention Module (Park et al., BMVC 2018): a channel and a spatial branch,
combined into one 3-D gate, placed between stages of a network rather than inside blocks."""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, reduced_channels, register_layer
from attention_zoo.layers.conv_bn import pytorch_batchnorm
from attention_zoo.layers.pooling import global_pool
from attention_zoo.utils.counting import conv_macs, dense_macs

_COMBINES = ("product", "sum")


@register_layer
class BottleneckAttention(AttentionLayer):
    """x * (1 + sigmoid(combine(channel(x), spatial(x)))).

    Channel branch: GAP -> FC C/r -> BN -> ReLU -> FC C.
    Spatial branch: 1x1 C/r -> BN -> ReLU -> n x (3x3 dilation d -> BN -> ReLU) -> 1x1 -> 1.

    Args:
        channels: channels of the input.
        reduction: r (16 in the paper).
        dilation: d (4 in the paper).
        num_dilated_convs: n (2 in the paper).
        combine: "product" as in the released code and weights, "sum" as in the paper.

    Attention: a dict with "channel" (batch, channels) and "spatial" (batch, H, W, 1), the
    branch outputs before combination, and "gate" (batch, H, W, 1), the channel mean of the
    final sigmoid gate, the map to overlay on an image.
    """

    def __init__(self, channels, reduction=16, dilation=4, num_dilated_convs=2, combine="product", **kwargs):
        super().__init__(**kwargs)
        if combine not in _COMBINES:
            raise ValueError(f"combine must be one of {_COMBINES}; got {combine!r}")
        self.channels = int(channels)
        self.reduction = reduction
        self.dilation = dilation
        self.num_dilated_convs = num_dilated_convs
        self.combine = combine
        self.hidden_channels = reduced_channels(self.channels, reduction)
        dtype = self.dtype_policy
        hidden = self.hidden_channels
        self.channel_reduce = keras.layers.Dense(hidden, name="channel_reduce", dtype=dtype)
        self.channel_bn = pytorch_batchnorm("channel_bn", dtype)
        self.channel_expand = keras.layers.Dense(self.channels, name="channel_expand", dtype=dtype)
        self.spatial_reduce = keras.layers.Conv2D(hidden, 1, name="spatial_reduce", dtype=dtype)
        self.spatial_reduce_bn = pytorch_batchnorm("spatial_reduce_bn", dtype)
        self.spatial_convs = [
            keras.layers.Conv2D(hidden, 3, padding="same", dilation_rate=dilation, name=f"spatial_conv{i}", dtype=dtype)
            for i in range(num_dilated_convs)
        ]
        self.spatial_bns = [pytorch_batchnorm(f"spatial_bn{i}", dtype) for i in range(num_dilated_convs)]
        self.spatial_out = keras.layers.Conv2D(1, 1, name="spatial_out", dtype=dtype)

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        hidden_map = (*input_shape[:-1], self.hidden_channels)
        self.channel_reduce.build((None, self.channels))
        self.channel_bn.build((None, self.hidden_channels))
        self.channel_expand.build((None, self.hidden_channels))
        self.spatial_reduce.build(input_shape)
        self.spatial_reduce_bn.build(hidden_map)
        for conv, bn in zip(self.spatial_convs, self.spatial_bns):
            conv.build(hidden_map)
            bn.build(hidden_map)
        self.spatial_out.build(hidden_map)

    def attend(self, inputs, training=None):
        channel = self.channel_reduce(global_pool(inputs))
        channel = self.channel_expand(ops.relu(self.channel_bn(channel, training=training)))
        spatial = ops.relu(self.spatial_reduce_bn(self.spatial_reduce(inputs), training=training))
        for conv, bn in zip(self.spatial_convs, self.spatial_bns):
            spatial = ops.relu(bn(conv(spatial), training=training))
        spatial = self.spatial_out(spatial)
        broadcast_channel = channel[:, None, None, :]
        logits = broadcast_channel * spatial if self.combine == "product" else broadcast_channel + spatial
        gate = ops.sigmoid(logits)
        attention = {"channel": channel, "spatial": spatial, "gate": ops.mean(gate, axis=-1, keepdims=True)}
        return inputs * (1.0 + gate), attention

    def count_macs(self, input_shape):
        hidden, channels = self.hidden_channels, self.channels
        hidden_map = (*input_shape[:-1], hidden)
        macs = dense_macs((1, channels), hidden) + dense_macs((1, hidden), channels)
        macs += conv_macs(hidden_map, (1, 1), channels, hidden)
        macs += self.num_dilated_convs * conv_macs(hidden_map, (3, 3), hidden, hidden)
        return macs + conv_macs((*input_shape[:-1], 1), (1, 1), hidden, 1)

    def compute_output_shape(self, input_shape):
        if self.return_attention:
            spatial = (*input_shape[:-1], 1)
            return input_shape, {"channel": (input_shape[0], self.channels), "spatial": spatial, "gate": spatial}
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            reduction=self.reduction,
            dilation=self.dilation,
            num_dilated_convs=self.num_dilated_convs,
            combine=self.combine,
        )
        return config
