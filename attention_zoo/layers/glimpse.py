"""The glimpse sensor of the Recurrent Attention Model (Mnih et al., NIPS 2014): a
retina-like read-out of k square patches centred at one location, the first g x g pixels,
each next one `scale_factor` times wider, all resized to g x g.

Coordinates follow the paper: a location is (x, y) with (0, 0) the image centre and
(-1, -1) the top-left corner; +-1 are the outer edges of the border pixels, so the
normalised range covers the image exactly (PyTorch's align_corners=False convention).
Outside the image the sensor reads zeros.

How the patches are read: sampling an axis-aligned grid is separable, and bilinear
interpolation with zero padding is the "hat" weight max(0, 1 - |y - i|) of each sample
point y on pixel row i. So a patch is `Wy @ image @ Wx^T` with per-example weight matrices
Wy (g, H) and Wx (g, W): two batched matrix products and elementwise ops. No gather, no
crop_and_resize, no image transform: TFLite builtins only (BatchMatMul), every tensor at
most 4-D, and exact zero padding for patches that leave the image. Resizing a wider patch
to g x g by average pooling ("area", the default, as Element-Research's SpatialGlimpse in
its RAM reproduction) is linear too, so it folds into the same weight matrices: each
output row averages the hat weights of the s full-resolution rows it pools.
"""

import keras
from keras import ops

from attention_zoo.layers.base import register_layer

RESAMPLING_MODES = ("area", "bilinear")


def locations_to_pixels(locations, image_size):
    """Normalised (x, y) locations in [-1, 1] -> pixel coordinates (x = column, y = row).

    Pixel i's centre is at coordinate i (matplotlib's `imshow` convention), so the image
    centre of a 28-pixel-wide image is at 13.5 and -1 / +1 are -0.5 / 27.5.

    Args:
        locations: array (..., 2) of (x, y) in the normalised coordinates of the sensor.
        image_size: (height, width) of the image.
    """
    height, width = image_size
    locations = ops.convert_to_tensor(locations)
    size = ops.convert_to_tensor([float(width), float(height)], dtype=locations.dtype)
    return (locations + 1.0) * size / 2.0 - 0.5


def pixels_to_locations(pixels, image_size):
    """Inverse of `locations_to_pixels`."""
    height, width = image_size
    pixels = ops.convert_to_tensor(pixels)
    size = ops.convert_to_tensor([float(width), float(height)], dtype=pixels.dtype)
    return (pixels + 0.5) * 2.0 / size - 1.0


@register_layer
class GlimpseSensor(keras.layers.Layer):
    """Reads k = `num_scales` patches of widths g, s*g, s^2*g, ... (s = `scale_factor`)
    centred at `locations`, each resized to g x g, and stacks them on the channel axis.

    Args:
        patch_size: g, side of the finest patch and of every output patch, in pixels.
        num_scales: k, the number of patches (the paper's 60x60 models use 3 or 4).
        scale_factor: width ratio of successive patches (2 in the paper); an integer.
        resampling: "area" averages the full-resolution pixels each output pixel covers
            (the wider patches are low-pass filtered, as a retina); "bilinear" samples one
            bilinearly interpolated point per output pixel (aliases on the wider patches).

    Call arguments: `[images, locations]`, images (batch, H, W, C) and locations
    (batch, 2) as (x, y) in [-1, 1] (values outside read more zero padding).

    Output: (batch, g, g, k * C), scale-major channels (finest patch first), so that
    channels `[s * C:(s + 1) * C]` hold scale s. The 5-D (batch, k, g, g, C) layout is
    `reshape(output, (batch, g, g, k, C))` transposed, kept out of the graph for TFLite.
    """

    def __init__(self, patch_size=8, num_scales=1, scale_factor=2, resampling="area", **kwargs):
        super().__init__(**kwargs)
        if int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(f"patch_size must be a positive integer; got {patch_size!r}")
        if int(num_scales) != num_scales or num_scales < 1:
            raise ValueError(f"num_scales must be a positive integer; got {num_scales!r}")
        if int(scale_factor) != scale_factor or scale_factor < 1:
            raise ValueError(
                f"scale_factor must be a positive integer (patches pool whole pixels); got {scale_factor!r}"
            )
        if resampling not in RESAMPLING_MODES:
            raise ValueError(f"resampling must be one of {RESAMPLING_MODES}; got {resampling!r}")
        self.patch_size = int(patch_size)
        self.num_scales = int(num_scales)
        self.scale_factor = int(scale_factor)
        self.resampling = resampling

    @property
    def scales(self):
        """Width of each patch relative to the finest one: 1, s, s^2, ..."""
        return tuple(self.scale_factor**k for k in range(self.num_scales))

    def _check_shapes(self, images_shape, locations_shape):
        if len(images_shape) != 4:
            raise ValueError(
                f"GlimpseSensor '{self.name}' expects images of rank 4 (batch, height, width, channels); "
                f"got shape {tuple(images_shape)}"
            )
        if len(locations_shape) != 2 or locations_shape[-1] != 2:
            raise ValueError(
                f"GlimpseSensor '{self.name}' expects locations of shape (batch, 2) holding (x, y) in [-1, 1]; "
                f"got shape {tuple(locations_shape)}"
            )

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                f"GlimpseSensor '{self.name}' is called on [images, locations]; got input shape {input_shape}"
            )
        self._check_shapes(*input_shape)

    def _axis_weights(self, centre, size, scale):
        """Interpolation weights (batch, g, size) of the g output pixels along one axis.

        `centre` (batch,) is the patch centre in pixel coordinates (pixel i centred at i).
        """
        g = self.patch_size
        dtype = centre.dtype
        if self.resampling == "area":
            # The s * g full-resolution sample points of the patch, s per output pixel.
            taps = scale
            offsets = ops.arange(g * scale, dtype=dtype) + 0.5 - g * scale / 2.0
        else:
            taps = 1
            offsets = (ops.arange(g, dtype=dtype) + 0.5 - g / 2.0) * scale
        points = centre[:, None] + offsets[None, :]
        pixels = ops.arange(size, dtype=dtype)
        hat = ops.relu(1.0 - ops.abs(points[:, :, None] - pixels[None, None, :]))
        if taps == 1:
            return hat
        return ops.mean(ops.reshape(hat, (-1, g, taps, size)), axis=2)

    def call(self, inputs):
        images, locations = inputs
        self._check_shapes(images.shape, locations.shape)
        images = ops.cast(images, self.compute_dtype)
        locations = ops.cast(locations, self.compute_dtype)
        shape = ops.shape(images)
        height, width, channels = shape[1], shape[2], shape[3]
        g = self.patch_size
        centre_x = (locations[:, 0] + 1.0) * ops.cast(width, self.compute_dtype) / 2.0 - 0.5
        centre_y = (locations[:, 1] + 1.0) * ops.cast(height, self.compute_dtype) / 2.0 - 0.5
        rows_of_image = ops.reshape(images, (-1, height, width * channels))
        patches = []
        for scale in self.scales:
            weights_y = self._axis_weights(centre_y, height, scale)  # (batch, g, H)
            weights_x = self._axis_weights(centre_x, width, scale)  # (batch, g, W)
            rows = ops.reshape(ops.matmul(weights_y, rows_of_image), (-1, g, width, channels))
            columns = ops.reshape(ops.transpose(rows, (0, 2, 1, 3)), (-1, width, g * channels))
            patch = ops.reshape(ops.matmul(weights_x, columns), (-1, g, g, channels))
            patches.append(ops.transpose(patch, (0, 2, 1, 3)))  # (batch, y, x, C)
        return patches[0] if len(patches) == 1 else ops.concatenate(patches, axis=-1)

    def compute_output_shape(self, input_shape):
        images_shape = input_shape[0]
        channels = images_shape[-1]
        channels = None if channels is None else channels * self.num_scales
        return (images_shape[0], self.patch_size, self.patch_size, channels)

    def count_macs(self, input_shape):
        """MACs of the two matrix products per scale (input_shape: the images' shape)."""
        _, height, width, channels = input_shape
        g = self.patch_size
        return self.num_scales * g * channels * (height * width + width * g)

    def get_config(self):
        config = super().get_config()
        config.update(
            patch_size=self.patch_size,
            num_scales=self.num_scales,
            scale_factor=self.scale_factor,
            resampling=self.resampling,
        )
        return config
