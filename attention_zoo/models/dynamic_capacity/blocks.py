"""The three sub-networks of a Dynamic Capacity Network and the geometry that ties them together.

Cluttered-digit setup of the paper (Almahairi et al., 2016; REFERENCE.md section 3, "DCN"):

- coarse layers, on the whole image: conv 12@7x7/2, conv 24@3x3/2 (valid, ReLU). Each vector of
  the coarse map at grid position (r, c) sees input pixels [4r, 4r + 10] (receptive field 11,
  stride 4); a 100x100 image gives a 23x23 grid, a 60x60 image 13x13.
- fine layers, on 14x14 input patches: conv 24@3x3 (valid), conv 24@3x3 (same), 2x2 max-pool,
  conv 24@3x3 (same), conv 24@3x3 (same), 2x2 max-pool, conv 24@3x3 (valid), all ReLU:
  14 -> 12 -> 12 -> 6 -> 6 -> 6 -> 3 -> 1. One patch gives exactly one 24-d vector, the fine
  counterpart of one coarse vector. The specification fixes the layers and the patch size, not
  the padding; valid first and last convolutions with "same" ones between are what makes 14
  pixels end in one position.
- top layers, shared: conv 96@4x4/2 (valid, ReLU), global max-pool, dense (logits).
  Their ReLU is a `Rectifier` (max(x, 0)), so that the saliency's backward pass exports to TFLite.

Patch geometry: the patch of grid position (r, c) covers input rows [4r - 2, 4r + 11] and columns
[4c - 2, 4c + 11]: the coarse receptive field [4r, 4r + 10] widened by 2 pixels before and 1
after, i.e. centred on it to half a pixel (an even patch cannot be centred exactly). Patches
step by 4 pixels, the coarse stride, so patch (r, c) belongs to grid position (r, c). Patches
reaching past the image read zeros: the image is zero-padded by (2, 1) rows and columns first,
after which patch (r, c) starts at padded pixel (4r, 4c).

Applied densely (the `dcn_fine` baseline), the fine layers run as ordinary convolutions on the
same (2, 1)-padded image: their output at (r, c) is centred on padded pixel 4r + 6.5, the centre
of patch (r, c), and the padded size H + 3 gives floor((H + 1) / 4) - 2 = the coarse grid size
for every H. The dense and the patch-wise fine vectors differ only where the "same" padding of
the middle convolutions sees zeros around a patch instead of the neighbouring pixels.
"""

import keras
from keras import ops

from attention_zoo.layers.base import register_layer

COARSE_STRIDE = 4
PATCH_SIZE = 14
IMAGE_PADDING = (2, 1)  # rows/columns of zeros before and after the image
MIN_GRID = 4  # the top 4x4 convolution needs a 4x4 grid at least
FEATURE_CHANNELS = 24


def _valid(size, kernel, stride):
    return (size - kernel) // stride + 1


def coarse_grid_size(size):
    """Coarse grid positions along one image side of `size` pixels (conv 7/2, then conv 3/2)."""
    return _valid(_valid(size, 7, 2), 3, 2)


def min_image_size():
    """Smallest image side whose coarse grid still fits the top 4x4 convolution."""
    size = 7
    while coarse_grid_size(size) < MIN_GRID:
        size += 1
    return size


def patch_origin(position):
    """First input pixel of the patch of a coarse grid position (negative means zero padding)."""
    return COARSE_STRIDE * position - IMAGE_PADDING[0]


def _conv(filters, kernel_size, name, strides=1, padding="valid", dtype=None):
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, activation="relu", name=name, dtype=dtype
    )


def coarse_layers(dtype=None):
    """Low-capacity layers applied to the whole image."""
    return [
        _conv(12, 7, "coarse_conv1", strides=2, dtype=dtype),
        _conv(FEATURE_CHANNELS, 3, "coarse_conv2", strides=2, dtype=dtype),
    ]


def fine_layers(dtype=None):
    """High-capacity layers: a 14x14 patch in, one 24-d vector (1x1x24) out."""
    return [
        _conv(24, 3, "fine_conv1", dtype=dtype),
        _conv(24, 3, "fine_conv2", padding="same", dtype=dtype),
        keras.layers.MaxPooling2D(2, name="fine_pool1", dtype=dtype),
        _conv(24, 3, "fine_conv3", padding="same", dtype=dtype),
        _conv(24, 3, "fine_conv4", padding="same", dtype=dtype),
        keras.layers.MaxPooling2D(2, name="fine_pool2", dtype=dtype),
        _conv(FEATURE_CHANNELS, 3, "fine_conv5", dtype=dtype),
    ]


@register_layer
class Rectifier(keras.layers.Layer):
    """ReLU written as max(x, 0): the same values as Keras' relu, but TensorFlow differentiates
    it with a comparison and a select instead of its ReluGrad op, which TFLite has no builtin
    for. The DCN differentiates through the top layers in every forward pass, inference too."""

    def call(self, inputs):
        return ops.maximum(inputs, ops.zeros((), dtype=inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape


def top_layers(num_classes, dtype=None, include_top=True):
    """Shared layers from a (coarse, fine or mixed) feature map to the class logits."""
    layers = [
        keras.layers.Conv2D(96, 4, strides=2, padding="valid", name="top_conv", dtype=dtype),
        Rectifier(name="top_relu", dtype=dtype),
    ]
    if include_top:
        layers += [
            keras.layers.GlobalMaxPooling2D(name="top_pool", dtype=dtype),
            keras.layers.Dense(num_classes, name="top_fc", dtype=dtype),
        ]
    return layers


def image_padding(name="image_padding", dtype=None):
    """Zeros around the image so that every patch, and the dense fine grid, fits."""
    return keras.layers.ZeroPadding2D((IMAGE_PADDING, IMAGE_PADDING), name=name, dtype=dtype)


def apply(layers, x, training=None):
    for layer in layers:
        x = layer(x, training=training) if training is not None else layer(x)
    return x
