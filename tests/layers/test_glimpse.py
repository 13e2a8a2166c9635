"""The RAM glimpse sensor: k patches of doubling width around (x, y) in [-1, 1]^2, each
resized to g x g, zero outside the image, checked against NumPy references."""

import keras
import numpy as np
import pytest

from attention_zoo.layers.glimpse import GlimpseSensor, locations_to_pixels, pixels_to_locations
from tests.helpers import check_layer, random_inputs

pytestmark = pytest.mark.every_backend


def glimpse(layer, images, locations):
    return keras.ops.convert_to_numpy(layer([np.asarray(images, "float32"), np.asarray(locations, "float32")]))


def numbered_image(height, width, channels=1):
    """Pixel values that name their position, so a wrong offset cannot go unnoticed."""
    values = np.arange(height * width * channels, dtype="float32") + 1.0
    return values.reshape(1, height, width, channels)


def reference_bilinear(image, x, y):
    """Bilinear sample of one (H, W, C) image at pixel coordinates (x, y), zeros outside:
    the textbook floor-and-blend formula, independent of the layer's weight matrices."""
    height, width, _ = image.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    value = np.zeros(image.shape[-1])
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                value = value + wy * wx * image[yy, xx]
    return value


def reference_glimpse(image, location, patch_size, num_scales, scale_factor=2, resampling="area"):
    """(g, g, k * C) glimpse of one image: for "area", each output pixel averages the
    s x s full-resolution (bilinear) samples it covers; for "bilinear", one sample."""
    height, width, channels = image.shape
    centre_x = (location[0] + 1) * width / 2 - 0.5
    centre_y = (location[1] + 1) * height / 2 - 0.5
    g = patch_size
    patches = []
    for k in range(num_scales):
        s = scale_factor**k
        patch = np.zeros((g, g, channels))
        for row in range(g):
            for col in range(g):
                if resampling == "area":
                    taps = [
                        (centre_x + col * s + u + 0.5 - g * s / 2, centre_y + row * s + v + 0.5 - g * s / 2)
                        for v in range(s)
                        for u in range(s)
                    ]
                else:
                    taps = [(centre_x + (col + 0.5 - g / 2) * s, centre_y + (row + 0.5 - g / 2) * s)]
                patch[row, col] = np.mean([reference_bilinear(image, x, y) for x, y in taps], axis=0)
        patches.append(patch)
    return np.concatenate(patches, axis=-1)


def test_centred_image_sized_patch_at_scale_one_is_the_image():
    images = random_inputs((2, 12, 12, 3))
    layer = GlimpseSensor(patch_size=12, num_scales=1)
    np.testing.assert_allclose(glimpse(layer, images, np.zeros((2, 2))), images, atol=1e-6)


def test_patch_at_the_top_left_corner_is_zero_padded_outside_the_image():
    image = numbered_image(16, 16)
    out = glimpse(GlimpseSensor(patch_size=8), image, [[-1.0, -1.0]])[0, :, :, 0]
    # The corner (-1, -1) is the outer edge of pixel (0, 0): the 8x8 patch spans pixels -4..3.
    expected = np.zeros((8, 8), "float32")
    expected[4:, 4:] = image[0, :4, :4, 0]
    np.testing.assert_array_equal(out, expected)
    bottom_right = glimpse(GlimpseSensor(patch_size=8), image, [[1.0, 1.0]])[0, :, :, 0]
    expected = np.zeros((8, 8), "float32")
    expected[:4, :4] = image[0, 12:, 12:, 0]
    np.testing.assert_array_equal(bottom_right, expected)


def test_each_scale_covers_twice_the_width_averaged_down_to_the_patch_size():
    image = numbered_image(16, 16)
    # x = y = -0.5 puts the centre on the corner between pixels 3 and 4.
    out = glimpse(GlimpseSensor(patch_size=4, num_scales=3), image, [[-0.5, -0.5]])[0]
    padded = np.pad(image[0, :, :, 0], 4)  # the widest patch leaves the image by 4 pixels

    def window(width, factor):
        start = 4 + 4 - width // 2
        block = padded[start : start + width, start : start + width]
        return block.reshape(4, factor, 4, factor).mean(axis=(1, 3))

    np.testing.assert_allclose(out[:, :, 0], window(4, 1))  # pixels 2..5
    np.testing.assert_allclose(out[:, :, 1], window(8, 2))  # pixels 0..7, 2x2 means
    np.testing.assert_allclose(out[:, :, 2], window(16, 4))  # pixels -4..11, 4x4 means, zero padded


@pytest.mark.parametrize("resampling", ["area", "bilinear"])
def test_off_grid_locations_match_a_numpy_bilinear_reference(resampling):
    images = random_inputs((3, 13, 11, 2), seed=3)
    locations = np.array([[0.13, -0.41], [-0.97, 0.88], [0.6, 0.05]], "float32")
    layer = GlimpseSensor(patch_size=5, num_scales=3, resampling=resampling)
    out = glimpse(layer, images, locations)
    for image, location, result in zip(images, locations, out):
        expected = reference_glimpse(image, location, 5, 3, resampling=resampling)
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_locations_are_x_then_y_on_non_square_images():
    image = numbered_image(8, 16)
    # x = 0.5 on a 16-pixel-wide image: column centre 11.5; y = 0: row centre 3.5.
    out = glimpse(GlimpseSensor(patch_size=4), image, [[0.5, 0.0]])[0, :, :, 0]
    np.testing.assert_array_equal(out, image[0, 2:6, 10:14, 0])


@pytest.mark.parametrize(
    "patch_size, num_scales, scale_factor, channels",
    [(12, 3, 2, 1), (6, 2, 3, 3)],
)
def test_output_is_four_dimensional_with_scales_stacked_on_channels(
    tmp_path, patch_size, num_scales, scale_factor, channels
):
    images = random_inputs((2, 30, 24, channels))
    locations = random_inputs((2, 2), seed=1)
    layer = GlimpseSensor(patch_size=patch_size, num_scales=num_scales, scale_factor=scale_factor)
    expected = (2, patch_size, patch_size, num_scales * channels)
    check_layer(layer, [images, locations], tmp_path, expected_shapes=[expected])
    assert layer.compute_output_shape([(None, 30, 24, channels), (None, 2)]) == (None, *expected[1:])


def test_location_pixel_conversions_follow_the_paper_convention():
    pixels = keras.ops.convert_to_numpy(locations_to_pixels([[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0]], (20, 28)))
    np.testing.assert_allclose(pixels, [[13.5, 9.5], [-0.5, -0.5], [27.5, 19.5]])
    locations = random_inputs((5, 2), seed=4)
    round_trip = pixels_to_locations(locations_to_pixels(locations, (20, 28)), (20, 28))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(round_trip), locations, atol=1e-6)


def test_bad_arguments_and_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="patch_size must be a positive integer"):
        GlimpseSensor(patch_size=0)
    with pytest.raises(ValueError, match="scale_factor must be a positive integer"):
        GlimpseSensor(scale_factor=1.5)
    with pytest.raises(ValueError, match="resampling must be one of"):
        GlimpseSensor(resampling="nearest")
    with pytest.raises(ValueError, match=r"expects locations of shape \(batch, 2\)"):
        GlimpseSensor()([random_inputs((1, 8, 8, 1)), random_inputs((1, 3))])
    with pytest.raises(ValueError, match="expects images of rank 4"):
        GlimpseSensor()([random_inputs((1, 8, 8)), random_inputs((1, 2))])
