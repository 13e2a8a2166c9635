"""Non-local block (Wang et al., CVPR 2018), embedded-Gaussian version, with several heads."""

import math

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, register_layer
from attention_zoo.layers.similarity import stable_softmax
from attention_zoo.utils.counting import conv_macs


@register_layer
class NonLocalBlock(AttentionLayer):
    """z = BN(W_z y) + x, y = softmax(theta(x) phi(x)^T / sqrt(d)) g(x), over the H * W positions.

    theta, phi and g are 1x1 convolutions to `inter_channels`, split into `num_heads` heads of
    d = inter_channels / num_heads channels that attend separately (multi-head self-attention
    over the positions; one head is the paper's block). W_z is a 1x1 convolution back to
    `channels`, followed by BatchNormalization whose gamma starts at zero, so the block starts
    as the identity (the paper's initialisation).

    Args:
        channels: channels C of the input feature map.
        inter_channels: width of theta/phi/g (default C // 2, as in the paper).
        num_heads: heads; must divide `inter_channels`.
        scale: divide the logits by sqrt(d). The paper's embedded Gaussian does not scale
            (scale=False); scaling keeps the softmax soft for wide embeddings.
        subsample: 2x2 max-pooling (stride 2, "valid") of phi and g, as in the paper; the
            keys are then the (H // 2) * (W // 2) pooled positions.
        use_bias: biases of the 1x1 convolutions (the official code has them). Some have no
            effect and get no gradient: phi's cancels in the softmax over the keys, and g's
            and W_z's are constant over positions, removed by the BatchNorm in training.
        bn_momentum, bn_epsilon: of the output BatchNormalization (PyTorch's defaults).

    Attention: (batch, num_heads, N_query, N_key), rows summing to one. Tensors stay 4-D:
    the heads are folded into the batch-like axis, never a 5-D transpose.
    MACs: theta, phi, g (3 N C I), the logits and the weighted sum (2 N M I), W_z (N I C).
    """

    def __init__(
        self,
        channels,
        inter_channels=None,
        num_heads=1,
        scale=True,
        subsample=False,
        use_bias=True,
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.inter_channels = int(inter_channels) if inter_channels is not None else max(1, self.channels // 2)
        self.num_heads = int(num_heads)
        if self.num_heads < 1 or self.inter_channels % self.num_heads:
            raise ValueError(
                f"num_heads ({num_heads}) must divide inter_channels ({self.inter_channels})"
            )
        self.head_channels = self.inter_channels // self.num_heads
        self.scale = bool(scale)
        self.subsample = bool(subsample)
        self.use_bias = bool(use_bias)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)

        def conv(filters, name):
            return keras.layers.Conv2D(filters, 1, use_bias=use_bias, name=name, dtype=self.dtype_policy)

        self.theta = conv(self.inter_channels, "theta")
        self.phi = conv(self.inter_channels, "phi")
        self.g = conv(self.inter_channels, "g")
        self.out_conv = conv(self.channels, "out_conv")
        self.out_bn = keras.layers.BatchNormalization(
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            gamma_initializer="zeros",
            name="out_bn",
            dtype=self.dtype_policy,
        )
        self.pool = keras.layers.MaxPooling2D(2, name="pool", dtype=self.dtype_policy) if self.subsample else None

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        for layer in (self.theta, self.phi, self.g):
            layer.build(input_shape)
        inter_shape = tuple(input_shape[:3]) + (self.inter_channels,)
        self.out_conv.build(inter_shape)
        self.out_bn.build(tuple(input_shape[:3]) + (self.channels,))

    def _split_heads(self, x, positions):
        """(batch, h, w, I) -> (batch, heads, positions, d)."""
        x = ops.reshape(x, (-1, positions, self.num_heads, self.head_channels))
        return ops.transpose(x, (0, 2, 1, 3))

    def attend(self, inputs, training=None):
        _, height, width, _ = ops.shape(inputs)
        theta, phi, g = self.theta(inputs), self.phi(inputs), self.g(inputs)
        if self.subsample:
            phi, g = self.pool(phi), self.pool(g)
        _, key_height, key_width, _ = ops.shape(phi)
        queries = self._split_heads(theta, height * width)
        keys = self._split_heads(phi, key_height * key_width)
        values = self._split_heads(g, key_height * key_width)
        if self.scale:
            queries = queries * (1.0 / math.sqrt(self.head_channels))
        attention = stable_softmax(ops.matmul(queries, ops.swapaxes(keys, -1, -2)), axis=-1)
        y = ops.transpose(ops.matmul(attention, values), (0, 2, 1, 3))
        y = ops.reshape(y, (-1, height, width, self.inter_channels))
        return self.out_bn(self.out_conv(y), training=training) + inputs, attention

    def _key_positions(self, height, width):
        if height is None or width is None:
            return None
        return (height // 2) * (width // 2) if self.subsample else height * width

    def count_macs(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        positions, keys = height * width, self._key_positions(height, width)
        shape = (1, height, width, self.inter_channels)
        projections = 3 * conv_macs(shape, (1, 1), self.channels, self.inter_channels)
        attention = 2 * positions * keys * self.inter_channels
        output = conv_macs((1, height, width, self.channels), (1, 1), self.inter_channels, self.channels)
        return projections + attention + output

    def compute_output_shape(self, input_shape):
        if not self.return_attention:
            return input_shape
        height, width = input_shape[1], input_shape[2]
        positions = None if height is None or width is None else height * width
        return input_shape, (input_shape[0], self.num_heads, positions, self._key_positions(height, width))

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            inter_channels=self.inter_channels,
            num_heads=self.num_heads,
            scale=self.scale,
            subsample=self.subsample,
            use_bias=self.use_bias,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config
