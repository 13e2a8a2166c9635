"""Convolutional Block Attention Module (Woo et al., ECCV 2018): a channel gate, then a
spatial gate, on the residual branch.

Two published layouts differ in ways that matter for loading weights:
- official code (Jongchan/attention-module): MLP with biases, spatial pooling order
  max-then-mean, spatial BatchNorm gamma initialised to 0;
- timm's CbamModule: MLP without biases (1x1 convs), order mean-then-max.
Both are options here; the defaults follow the official code.
"""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, reduced_channels, register_layer
from attention_zoo.layers.conv_bn import folded_batchnorm, uses_batch_statistics
from attention_zoo.layers.pooling import conv_to_one_channel, global_pool
from attention_zoo.utils.counting import conv_macs, dense_macs

_POOL_ORDERS = ("max_mean", "mean_max")


@register_layer
class ChannelAttention(AttentionLayer):
    """Shared MLP on the global average- and max-pooled descriptors, summed, sigmoid.

    Attention: the channel gates, shape (batch, channels).
    """

    def __init__(self, channels, reduction=16, rd_channels=None, rd_divisor=1, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.reduction = reduction
        self.rd_channels = rd_channels
        self.rd_divisor = rd_divisor
        self.use_bias = use_bias
        self.hidden_channels = reduced_channels(self.channels, reduction, rd_channels, rd_divisor)
        self.reduce = keras.layers.Dense(
            self.hidden_channels, activation="relu", use_bias=use_bias, name="reduce", dtype=self.dtype_policy
        )
        self.expand = keras.layers.Dense(self.channels, use_bias=use_bias, name="expand", dtype=self.dtype_policy)

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        self.reduce.build((None, self.channels))
        self.expand.build((None, self.hidden_channels))

    def gates(self, inputs):
        hidden = self.reduce(global_pool(inputs, "mean")) + self.reduce(global_pool(inputs, "max"))
        # expand is linear, so expand(a) + expand(b) = expand(a + b) plus its bias once more.
        logits = self.expand(hidden)
        if self.use_bias:
            logits = logits + self.expand.bias
        return ops.sigmoid(logits)

    def attend(self, inputs, training=None):
        gates = self.gates(inputs)
        return inputs * gates[:, None, None, :], gates

    def count_macs(self, input_shape):
        return 2 * dense_macs((1, self.channels), self.hidden_channels) + dense_macs(
            (1, self.hidden_channels), self.channels
        )

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
        )
        return config


@register_layer
class SpatialAttention(AttentionLayer):
    """Channel-wise max and mean maps -> k x k conv (no bias) -> BatchNorm -> sigmoid.

    Attention: the spatial gate, shape (batch, H, W, 1).
    """

    def __init__(self, kernel_size=7, pool_order="max_mean", use_batchnorm=True, bn_gamma_init="zeros", **kwargs):
        super().__init__(**kwargs)
        if pool_order not in _POOL_ORDERS:
            raise ValueError(f"pool_order must be one of {_POOL_ORDERS}; got {pool_order!r}")
        self.kernel_size = int(kernel_size)
        self.pool_order = pool_order
        self.use_batchnorm = use_batchnorm
        self.bn_gamma_init = bn_gamma_init
        self.conv = keras.layers.Conv2D(
            1, self.kernel_size, padding="same", use_bias=not use_batchnorm, name="conv", dtype=self.dtype_policy
        )
        self.bn = (
            keras.layers.BatchNormalization(
                epsilon=1e-5, momentum=0.99, gamma_initializer=bn_gamma_init, name="bn", dtype=self.dtype_policy
            )
            if use_batchnorm
            else None
        )

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"SpatialAttention expects NHWC feature maps of rank 4; got {tuple(input_shape)}")
        self.conv.build((*input_shape[:-1], 2))
        if self.bn is not None:
            self.bn.build((*input_shape[:-1], 1))

    def gates(self, inputs, training=None):
        pooled = [ops.max(inputs, axis=-1, keepdims=True), ops.mean(inputs, axis=-1, keepdims=True)]
        if self.pool_order == "mean_max":
            pooled.reverse()
        kernel = self.conv.kernel
        bias = self.conv.bias if self.conv.use_bias else None
        batch_statistics = self.bn is not None and uses_batch_statistics(self.bn, training)
        if self.bn is not None and not batch_statistics:
            # At inference the BatchNorm is one affine map of the single logit channel: folded
            # into the 98 kernel weights it saves a pass and a handful of ops at every block.
            scale, offset = folded_batchnorm(self.bn)
            kernel = kernel * scale
            bias = offset if bias is None else bias * scale + offset
        logits = conv_to_one_channel(pooled, kernel)
        if bias is not None:
            logits = logits + ops.cast(bias, logits.dtype)
        if batch_statistics:
            logits = self.bn(logits, training=True)
        return ops.sigmoid(logits)

    def attend(self, inputs, training=None):
        gates = self.gates(inputs, training=training)
        return inputs * gates, gates

    def count_macs(self, input_shape):
        return conv_macs((*input_shape[:-1], 1), (self.kernel_size, self.kernel_size), 2, 1)

    def compute_output_shape(self, input_shape):
        if self.return_attention:
            return input_shape, (*input_shape[:-1], 1)
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            pool_order=self.pool_order,
            use_batchnorm=self.use_batchnorm,
            bn_gamma_init=self.bn_gamma_init,
        )
        return config


@register_layer
class CBAM(AttentionLayer):
    """Channel attention followed by spatial attention.

    Args:
        channels, reduction, rd_channels, rd_divisor, mlp_bias: the channel gate's MLP.
        kernel_size, pool_order, spatial_gamma_init: the spatial gate
            (official: "max_mean", gamma "zeros"; timm: "mean_max", "ones").

    Attention: a dict with "channel" (batch, channels) and "spatial" (batch, H, W, 1).
    """

    def __init__(
        self,
        channels,
        reduction=16,
        rd_channels=None,
        rd_divisor=1,
        mlp_bias=True,
        kernel_size=7,
        pool_order="max_mean",
        spatial_gamma_init="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.reduction = reduction
        self.rd_channels = rd_channels
        self.rd_divisor = rd_divisor
        self.mlp_bias = mlp_bias
        self.kernel_size = kernel_size
        self.pool_order = pool_order
        self.spatial_gamma_init = spatial_gamma_init
        self.channel_attention = ChannelAttention(
            channels, reduction, rd_channels, rd_divisor, use_bias=mlp_bias, name="channel", dtype=self.dtype_policy
        )
        self.spatial_attention = SpatialAttention(
            kernel_size, pool_order, bn_gamma_init=spatial_gamma_init, name="spatial", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        self.channel_attention.build(input_shape)
        self.spatial_attention.build(input_shape)

    def attend(self, inputs, training=None):
        channel_gates = self.channel_attention.gates(inputs)
        refined = inputs * channel_gates[:, None, None, :]
        spatial_gates = self.spatial_attention.gates(refined, training=training)
        return refined * spatial_gates, {"channel": channel_gates, "spatial": spatial_gates}

    def count_macs(self, input_shape):
        return self.channel_attention.count_macs(input_shape) + self.spatial_attention.count_macs(input_shape)

    def compute_output_shape(self, input_shape):
        if self.return_attention:
            return input_shape, {"channel": (input_shape[0], self.channels), "spatial": (*input_shape[:-1], 1)}
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            reduction=self.reduction,
            rd_channels=self.rd_channels,
            rd_divisor=self.rd_divisor,
            mlp_bias=self.mlp_bias,
            kernel_size=self.kernel_size,
            pool_order=self.pool_order,
            spatial_gamma_init=self.spatial_gamma_init,
        )
        return config
