"""The additive grid attention gate of Attention U-Net (Oktay et al., MIDL 2018).

A skip connection x (fine grid) is gated by a signal g from a coarser decoder level:

    q = psi(ReLU(theta(x) + resize(phi(g))))        on theta's grid (x sub-sampled by f)
    alpha = resize(sigmoid(q)) to x's grid          the gate coefficients, in (0, 1)
    output = BN(W(alpha * x))

theta is a k = f, stride f convolution without bias (the sub-sampling that puts x on g's
grid), phi and psi are 1x1 convolutions with bias, W a 1x1 convolution followed by
BatchNorm, as in the official code (`_GridAttentionBlockND`, mode "concatenation").
Both resizes are bilinear; `keras.ops.image.resize` samples at half-pixel centres, which is
PyTorch's `align_corners=False`, so a port of the official weights computes the same gate
(run with PyTorch >= 0.4, the official code interpolates with align_corners=False; the
PyTorch 0.3 it was written for interpolated like align_corners=True).
"""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, register_layer
from attention_zoo.utils.counting import conv_macs


def _static_size(shape):
    """(height, width) as Python ints when known, else None."""
    height, width = shape[1], shape[2]
    if height is None or width is None:
        return None
    return int(height), int(width)


@register_layer
class AttentionGate(AttentionLayer):
    """Oktay's additive attention gate on a skip connection, gated by a coarser signal.

    Inputs: `[skip, gating]`, NHWC feature maps; the gating signal may be on any grid (it is
    resized to theta's grid), usually the one of the skip sub-sampled by `sub_sample_factor`.

    Args:
        channels: channels of the skip connection (and of the output).
        gating_channels: channels of the gating signal; None accepts any.
        inter_channels: width of theta/phi (default channels // 2, at least 1, as the
            official layer; the official pancreas model passes inter_channels=channels).
        sub_sample_factor: kernel size and stride of theta (2 in the paper).
        bn_momentum, bn_epsilon: of the output BatchNorm (PyTorch's defaults).

    Attention: the gate coefficients alpha resampled to the skip's grid, (batch, H, W, 1).
    Needs static skip sizes on the TensorFlow backend (Keras' resize to a dynamic size).
    """

    def __init__(
        self,
        channels,
        gating_channels=None,
        inter_channels=None,
        sub_sample_factor=2,
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.gating_channels = None if gating_channels is None else int(gating_channels)
        self.inter_channels = int(inter_channels) if inter_channels is not None else max(1, self.channels // 2)
        self.sub_sample_factor = int(sub_sample_factor)
        if self.sub_sample_factor < 1 or self.inter_channels < 1:
            raise ValueError(
                f"AttentionGate needs sub_sample_factor >= 1 and inter_channels >= 1; got "
                f"{sub_sample_factor!r} and {inter_channels!r}"
            )
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        factor = self.sub_sample_factor
        self.theta = keras.layers.Conv2D(
            self.inter_channels, factor, strides=factor, padding="valid", use_bias=False, name="theta",
            dtype=self.dtype_policy,
        )
        self.phi = keras.layers.Conv2D(self.inter_channels, 1, use_bias=True, name="phi", dtype=self.dtype_policy)
        self.psi = keras.layers.Conv2D(1, 1, use_bias=True, name="psi", dtype=self.dtype_policy)
        self.out_conv = keras.layers.Conv2D(self.channels, 1, use_bias=True, name="out_conv", dtype=self.dtype_policy)
        self.out_bn = keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon, name="out_bn", dtype=self.dtype_policy
        )
        self._gating_size = None

    def _split(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not isinstance(
            input_shape[0], (list, tuple)
        ):
            raise ValueError(
                f"AttentionGate '{self.name}' takes two inputs [skip, gating]; got input shape {input_shape}"
            )
        return tuple(input_shape[0]), tuple(input_shape[1])

    def build(self, input_shape):
        skip_shape, gating_shape = self._split(input_shape)
        check_channels(self, skip_shape, self.channels)
        if len(gating_shape) != 4:
            raise ValueError(
                f"AttentionGate '{self.name}' expects an NHWC gating signal of rank 4; got shape {gating_shape}"
            )
        if self.gating_channels is not None and gating_shape[-1] not in (None, self.gating_channels):
            raise ValueError(
                f"AttentionGate '{self.name}' was created for a gating signal of {self.gating_channels} "
                f"channels; got shape {gating_shape}"
            )
        for size in skip_shape[1:3]:
            if size is not None and size < self.sub_sample_factor:
                raise ValueError(
                    f"AttentionGate '{self.name}': the skip connection {skip_shape} is smaller than "
                    f"sub_sample_factor={self.sub_sample_factor}"
                )
        self._gating_size = _static_size(gating_shape)
        self.theta.build(skip_shape)
        self.phi.build(gating_shape)
        self.psi.build((*self.theta.compute_output_shape(skip_shape)[:3], self.inter_channels))
        self.out_conv.build(skip_shape)
        self.out_bn.build(skip_shape)

    def _grid_of(self, tensor):
        size = _static_size(tuple(tensor.shape))
        if size is not None:
            return size
        shape = ops.shape(tensor)
        return shape[1], shape[2]

    def attend(self, inputs, training=None):
        skip, gating = inputs
        theta_x = self.theta(skip)
        phi_g = self.phi(gating)
        grid = _static_size(tuple(theta_x.shape))
        # In a U-Net the gating signal already lies on theta's grid: no resize to export.
        if grid is None or _static_size(tuple(phi_g.shape)) != grid:
            phi_g = ops.image.resize(phi_g, self._grid_of(theta_x), interpolation="bilinear")
        coefficients = ops.sigmoid(self.psi(ops.relu(theta_x + phi_g)))
        if grid is None or _static_size(tuple(skip.shape)) != grid:
            coefficients = ops.image.resize(coefficients, self._grid_of(skip), interpolation="bilinear")
        attended = self.out_bn(self.out_conv(skip * coefficients), training=training)
        return attended, coefficients

    def count_macs(self, input_shape):
        """MACs of theta, phi, psi and W. `input_shape` is the skip's shape (what the zoo's
        counter passes) or the pair [skip, gating]; the gating grid defaults to the one seen
        when the layer was built, else to theta's grid."""
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            skip_shape, gating_shape = self._split(input_shape)
            gating_size = _static_size(gating_shape)
        else:
            skip_shape, gating_size = tuple(input_shape), self._gating_size
        factor = self.sub_sample_factor
        grid = (1, skip_shape[1] // factor, skip_shape[2] // factor)
        gating_size = gating_size or grid[1:]
        gating_channels = self.gating_channels or self.phi.kernel.shape[2]
        theta = conv_macs((*grid, self.inter_channels), (factor, factor), self.channels, self.inter_channels)
        phi = conv_macs((1, *gating_size, self.inter_channels), (1, 1), gating_channels, self.inter_channels)
        psi = conv_macs((*grid, 1), (1, 1), self.inter_channels, 1)
        out = conv_macs((1, skip_shape[1], skip_shape[2], self.channels), (1, 1), self.channels, self.channels)
        return theta + phi + psi + out

    def compute_output_shape(self, input_shape):
        skip_shape, _ = self._split(input_shape)
        if self.return_attention:
            return skip_shape, (*skip_shape[:3], 1)
        return skip_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            gating_channels=self.gating_channels,
            inter_channels=self.inter_channels,
            sub_sample_factor=self.sub_sample_factor,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config
