"""Layers of the Residual Attention Network that Keras does not have.

- `CaffeMaxPool2D`: the official models' 3x3/2 max pooling in Caffe's ceil mode;
- `ResizeLike`: Caffe's `Interp` layer, bilinear resizing of a map to another map's size;
- `AttentionMask`: the mask head and attention residual learning, (1 + M(x)) * T(x), which
  hands its mask M back for visualisation.
"""

import keras
import numpy as np
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, register_layer
from attention_zoo.layers.conv_bn import pytorch_batchnorm
from attention_zoo.utils.counting import conv_macs

ATTENTION_TYPES = ("mixed", "channel", "spatial")


def _static_size(layer, shape):
    if len(shape) != 4:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects NHWC maps of rank 4; got {tuple(shape)}")
    if shape[1] is None or shape[2] is None:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' needs static spatial sizes (the Residual Attention "
            f"Network resizes its masks to fixed sizes); got shape {tuple(shape)}. Build the model with "
            "input_shape=(H, W, C)."
        )
    return int(shape[1]), int(shape[2])


@register_layer
class CaffeMaxPool2D(keras.layers.Layer):
    """3x3/2 max pooling in Caffe's ceil mode without padding (the official prototxt's pools).

    Caffe clips the last window at the border instead of dropping it: an H x W map becomes
    floor(H/2) x floor(W/2) for every H, W >= 2 (56 -> 28 -> 14 -> 7 at 224 pixels). Repeating
    the last row and column and pooling "valid" gives exactly that: the repeated value already
    lies in the clipped window, so it never changes a maximum. Zero padding would, because the
    mask branch pools the raw (pre-BN, possibly negative) residual stream.
    """

    def build(self, input_shape):
        for size in _static_size(self, input_shape):
            if size < 2:
                raise ValueError(
                    f"CaffeMaxPool2D '{self.name}' needs maps of at least 2x2 to pool; got shape {tuple(input_shape)}"
                )

    def call(self, inputs):
        x = ops.concatenate([inputs, inputs[:, -1:, :, :]], axis=1)
        x = ops.concatenate([x, x[:, :, -1:, :]], axis=2)
        return ops.max_pool(x, pool_size=3, strides=2, padding="valid")

    def compute_output_shape(self, input_shape):
        height, width = _static_size(self, input_shape)
        return (input_shape[0], height // 2, width // 2, input_shape[3])


def _align_corners_matrix(in_size, out_size):
    """(in_size, out_size) matrix of align-corners bilinear interpolation along one axis: column
    o holds the weights of the two source pixels of output pixel o."""
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    position = np.arange(out_size, dtype="float64") * scale
    lower = np.minimum(np.floor(position).astype("int64"), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)
    weight = position - lower
    matrix = np.zeros((in_size, out_size), dtype="float64")
    np.add.at(matrix, (lower, np.arange(out_size)), 1.0 - weight)
    np.add.at(matrix, (upper, np.arange(out_size)), weight)
    return matrix.astype("float32")


@register_layer
class ResizeLike(keras.layers.Layer):
    """Bilinear resize of `inputs[0]` to the spatial size of `inputs[1]` (Caffe's `Interp`).

    Args:
        align_corners: True reproduces the official Caffe `Interp` layer, which maps corner
            pixels onto corner pixels (PyTorch `align_corners=True`); it is written as a
            product with the constant interpolation matrix per axis, which LiteRT runs as
            FULLY_CONNECTED ops that XNNPACK takes in float32 and int8 (gathers it leaves to
            LiteRT's reference kernels, splitting the graph at every mask). False uses
            `keras.ops.image.resize` (half-pixel centres, PyTorch `align_corners=False`,
            TensorFlow 2's `tf.image.resize`).
    """

    def __init__(self, align_corners=True, **kwargs):
        super().__init__(**kwargs)
        self.align_corners = bool(align_corners)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"ResizeLike '{self.name}' takes [maps, reference]; got input shapes {input_shape}")
        _static_size(self, input_shape[0])
        _static_size(self, input_shape[1])

    def _resize_last_axis(self, x, out_size):
        in_size = x.shape[-1]
        if in_size == out_size:
            return x
        matrix = ops.cast(ops.convert_to_tensor(_align_corners_matrix(in_size, out_size)), x.dtype)
        # A rank-2 product with a constant right operand converts to one FULLY_CONNECTED op.
        resized = ops.matmul(ops.reshape(x, (-1, in_size)), matrix)
        return ops.reshape(resized, (-1, *x.shape[1:-1], out_size))

    def _align_corners_resize(self, x, height, width):
        x = self._resize_last_axis(ops.transpose(x, (0, 2, 3, 1)), height)  # rows last: (b, w, c, H)
        x = self._resize_last_axis(ops.transpose(x, (0, 3, 2, 1)), width)  # columns last: (b, H, c, W)
        return ops.transpose(x, (0, 1, 3, 2))

    def call(self, inputs):
        x, reference = inputs
        height, width = _static_size(self, reference.shape)
        if tuple(x.shape[1:3]) == (height, width):
            return x
        if self.align_corners:
            return self._align_corners_resize(x, height, width)
        return ops.image.resize(x, (height, width), interpolation="bilinear", antialias=False)

    def compute_output_shape(self, input_shape):
        shape, reference = input_shape
        return (shape[0], reference[1], reference[2], shape[3])

    def get_config(self):
        config = super().get_config()
        config["align_corners"] = self.align_corners
        return config


@register_layer
class AttentionMask(AttentionLayer):
    """Mask head and attention residual learning of an Attention Module.

    Takes `[trunk, mask_features]`, both (batch, H, W, C): the trunk branch output T(x) and
    the bottom-up top-down features of the mask branch at the trunk's size. The head is
    BN-ReLU-1x1-BN-ReLU-1x1 (no biases, as in the official prototxt), then the attention
    type's normalisation f gives the mask M. The output is (1 + M) * T: a mask near 0 keeps
    the trunk's features instead of suppressing them, which is what lets modules stack.

    Args:
        channels: C.
        attention_type: the paper's three activation functions (section 3.3, table 1):
            "mixed": sigmoid per channel and position (the released models);
            "channel": L2 normalisation over the channels at each position;
            "spatial": each channel's map normalised to zero mean and unit standard deviation
                over the positions (per example), then sigmoid.
        epsilon: keeps the normalisations finite (channel: the smallest norm divided by;
            spatial: added to the variance).

    Attention: the mask M, shape (batch, H, W, C).
    """

    def __init__(self, channels, attention_type="mixed", epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}; got {attention_type!r}")
        self.channels = int(channels)
        self.attention_type = attention_type
        self.epsilon = float(epsilon)
        dtype = self.dtype_policy
        self.bn1 = pytorch_batchnorm("bn1", dtype=dtype)
        self.conv1 = keras.layers.Conv2D(self.channels, 1, use_bias=False, name="conv1", dtype=dtype)
        self.bn2 = pytorch_batchnorm("bn2", dtype=dtype)
        self.conv2 = keras.layers.Conv2D(self.channels, 1, use_bias=False, name="conv2", dtype=dtype)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                f"AttentionMask '{self.name}' takes [trunk, mask_features]; got input shapes {input_shape}"
            )
        trunk_shape, mask_shape = (tuple(shape) for shape in input_shape)
        check_channels(self, trunk_shape, self.channels)
        check_channels(self, mask_shape, self.channels)
        if trunk_shape[1:3] != mask_shape[1:3]:
            raise ValueError(
                f"AttentionMask '{self.name}': the mask features {mask_shape} must have the trunk's "
                f"spatial size {trunk_shape}"
            )
        for layer in (self.bn1, self.conv1, self.bn2, self.conv2):
            layer.build(mask_shape)

    def mask_logits(self, mask_features, training=None):
        """The mask head before the attention type's normalisation."""
        x = self.conv1(ops.relu(self.bn1(mask_features, training=training)))
        return self.conv2(ops.relu(self.bn2(x, training=training)))

    def normalize(self, logits):
        """The attention type's activation f of the paper, applied to the head's output."""
        if self.attention_type == "mixed":
            return ops.sigmoid(logits)
        # Statistics in float32: under mixed precision, float16 squares overflow and its
        # epsilon underflows.
        x = ops.cast(logits, "float32")
        if self.attention_type == "channel":
            squares = ops.sum(ops.square(x), axis=-1, keepdims=True)
            # max() before the square root: its gradient at 0 would be infinite.
            mask = x / ops.sqrt(ops.maximum(squares, self.epsilon**2))
        else:
            mean = ops.mean(x, axis=(1, 2), keepdims=True)
            variance = ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True)
            mask = ops.sigmoid((x - mean) / ops.sqrt(variance + self.epsilon))
        return ops.cast(mask, logits.dtype)

    def attend(self, inputs, training=None):
        trunk, mask_features = inputs
        mask = self.normalize(self.mask_logits(mask_features, training=training))
        # The official graph's order: T + M * T.
        return trunk + trunk * mask, mask

    def count_macs(self, input_shape):
        return 2 * conv_macs(input_shape, (1, 1), self.channels, self.channels)

    def compute_output_shape(self, input_shape):
        trunk_shape = tuple(input_shape[0])
        if self.return_attention:
            return trunk_shape, trunk_shape
        return trunk_shape

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, attention_type=self.attention_type, epsilon=self.epsilon)
        return config
