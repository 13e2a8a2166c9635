"""The spatial transformer: its grid and bilinear sampler against a NumPy reference of the
align_corners=False convention, the identity initialisation, the "attention" transform,
gradients to image, grid and localisation network, and the layer contract."""

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.spatial_transformer import SpatialTransformer, affine_grid, attention_theta, grid_sample
from tests.helpers import check_layer, random_inputs

pytestmark = pytest.mark.every_backend

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "float32")
SMALL_LOCALIZATION = dict(localization_filters=(4,), localization_kernel_size=3, localization_units=(8,))
# Few shapes on purpose: JAX compiles each eager op once per shape.
IMAGES = random_inputs((2, 8, 12, 2), seed=2)  # non-square, so swapped x and y would show
DIGITS = random_inputs((2, 60, 60, 1), seed=9, low=0.0)
SMALL = random_inputs((2, 32, 32, 3), seed=10)


# --- NumPy reference (align_corners=False, zero padding or border clamping) ---------------


def reference_grid(theta, out_height, out_width):
    """Output pixel centres (2 i + 1) / n - 1 mapped through theta: (batch, H, W, 2) of (x, y)."""
    xs = (2 * np.arange(out_width) + 1) / out_width - 1
    ys = (2 * np.arange(out_height) + 1) / out_height - 1
    gx, gy = np.meshgrid(xs, ys)  # (H, W), x varies along the columns
    target = np.stack([gx, gy, np.ones_like(gx)], axis=-1)  # (H, W, 3)
    return np.einsum("hwk,bik->bhwi", target, np.asarray(theta, "float64"))


def reference_sample(images, grid, padding_mode="zeros"):
    """Bilinear interpolation of NHWC images at normalised (x, y), written pixel by pixel."""
    images = np.asarray(images, "float64")
    batch, height, width, channels = images.shape
    _, out_height, out_width, _ = grid.shape
    out = np.zeros((batch, out_height, out_width, channels))
    for b in range(batch):
        for i in range(out_height):
            for j in range(out_width):
                # -1 is the left edge of pixel 0 (coordinate -0.5), +1 the right edge of the last.
                x = ((grid[b, i, j, 0] + 1) * width - 1) / 2
                y = ((grid[b, i, j, 1] + 1) * height - 1) / 2
                if padding_mode == "border":
                    x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
                x0, y0 = int(np.floor(x)), int(np.floor(y))
                for cx, cy in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                    weight = (1 - abs(x - cx)) * (1 - abs(y - cy))
                    if 0 <= cx < width and 0 <= cy < height:
                        out[b, i, j] += weight * images[b, cy, cx]
    return out


def random_thetas(batch, seed, scale=0.4):
    rng = np.random.default_rng(seed)
    return (IDENTITY + rng.normal(0.0, scale, size=(batch, 2, 3))).astype("float32")


def to_numpy(x):
    return ops.convert_to_numpy(x)


def gradients(function, *args):
    """Gradients of the scalar function(*args) with respect to every argument, per backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = function(*tensors)
        return [g.numpy() for g in tape.gradient(value, tensors)]
    if backend == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(function, argnums=tuple(range(len(args))))(*args)]
    import torch

    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    function(*tensors).backward()
    return [t.grad.numpy() for t in tensors]


# --- grid and sampler -----------------------------------------------------------------------


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_identity_theta_at_the_same_size_reproduces_the_image(padding_mode):
    theta = np.repeat(IDENTITY[None], 2, axis=0)
    sampled = grid_sample(IMAGES, affine_grid(theta, (8, 12)), padding_mode)
    np.testing.assert_allclose(to_numpy(sampled), IMAGES, atol=1e-5)


def test_grid_maps_output_pixel_centres_through_theta():
    theta = random_thetas(2, seed=1)
    np.testing.assert_allclose(to_numpy(affine_grid(theta, (5, 7))), reference_grid(theta, 5, 7), atol=1e-5)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_sampler_matches_a_numpy_bilinear_reference_for_random_affine_thetas(padding_mode):
    # Scale 0.5 noise sends many sample points outside the image, exercising the padding.
    for seed in (3, 4):
        theta = random_thetas(2, seed=seed, scale=0.5)
        expected = reference_sample(IMAGES, reference_grid(theta, 5, 7), padding_mode)
        actual = grid_sample(IMAGES, affine_grid(theta, (5, 7)), padding_mode)
        np.testing.assert_allclose(to_numpy(actual), expected, atol=2e-5)


def test_zero_padding_is_black_outside_and_border_padding_repeats_the_edge():
    images = IMAGES + 2.0  # no zeros inside the image
    far_right = np.repeat(np.array([[[1.0, 0.0, 5.0], [0.0, 1.0, 0.0]]], "float32"), 2, axis=0)  # 2.5 widths away
    grid = affine_grid(far_right, (8, 12))
    assert np.all(to_numpy(grid_sample(images, grid, "zeros")) == 0)
    edge = np.repeat(images[:, :, -1:], 12, axis=2)
    np.testing.assert_allclose(to_numpy(grid_sample(images, grid, "border")), edge, atol=1e-6)


@pytest.mark.parametrize("shift", [1, 3])
def test_translation_by_a_whole_number_of_pixels_shifts_the_image(shift):
    # One pixel is 2 / width in normalised units; output x samples input x + shift.
    theta = np.repeat(np.array([[[1.0, 0.0, 2.0 * shift / 12], [0.0, 1.0, 0.0]]], "float32"), 2, axis=0)
    shifted = to_numpy(grid_sample(IMAGES, affine_grid(theta, (8, 12))))
    np.testing.assert_allclose(shifted[:, :, : 12 - shift], IMAGES[:, :, shift:], atol=1e-5)
    np.testing.assert_allclose(shifted[:, :, 12 - shift :], 0.0, atol=1e-6)
    # And vertically: output y samples input y - shift.
    theta = np.repeat(np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, -2.0 * shift / 8]]], "float32"), 2, axis=0)
    shifted = to_numpy(grid_sample(IMAGES, affine_grid(theta, (8, 12))))
    np.testing.assert_allclose(shifted[:, shift:], IMAGES[:, : 8 - shift], atol=1e-5)
    np.testing.assert_allclose(shifted[:, :shift], 0.0, atol=1e-6)


def test_attention_transform_with_scale_one_half_zooms_on_the_centre():
    centre = attention_theta(np.array([[0.5, 0.0, 0.0], [0.5, 0.5, 0.0]], "float32"))
    np.testing.assert_allclose(to_numpy(centre)[1], [[0.5, 0.0, 0.5], [0.0, 0.5, 0.0]])
    # At half the size, output pixel centres land exactly on input pixel centres.
    crops = to_numpy(grid_sample(IMAGES, affine_grid(centre, (4, 6))))
    np.testing.assert_allclose(crops[0], IMAGES[0, 2:6, 3:9], atol=1e-5)
    np.testing.assert_allclose(crops[1], IMAGES[1, 2:6, 6:12], atol=1e-5)  # tx = 0.5: the right half


def test_gradients_reach_the_image_and_theta_and_match_finite_differences():
    images = IMAGES
    theta = random_thetas(2, seed=7, scale=0.3)
    projection = random_inputs((2, 4, 6, 2), seed=8)

    def loss(images, theta):
        return ops.sum(ops.multiply(grid_sample(images, affine_grid(theta, (4, 6))), projection))

    def reference_loss(images, theta):
        return np.sum(reference_sample(images, reference_grid(theta, 4, 6)) * projection)

    image_grad, theta_grad = gradients(loss, images, theta)
    eps = 1e-6  # float64 central differences on the reference: exact away from pixel boundaries
    expected_theta_grad = np.zeros(theta.shape)
    for index in np.ndindex(theta.shape):
        step = np.zeros(theta.shape)
        step[index] = eps
        expected_theta_grad[index] = (reference_loss(images, theta + step) - reference_loss(images, theta - step)) / (
            2 * eps
        )
    np.testing.assert_allclose(theta_grad, expected_theta_grad, rtol=1e-3, atol=1e-3)
    # The output is linear in the image: its gradient is the loss of a one-hot image.
    expected_image_grad = np.zeros(images.shape)
    for index in np.ndindex(images.shape):
        one_hot = np.zeros(images.shape)
        one_hot[index] = 1.0
        expected_image_grad[index] = reference_loss(one_hot, theta)
    np.testing.assert_allclose(image_grad, expected_image_grad, atol=1e-5)
    assert np.abs(theta_grad).max() > 0 and np.abs(image_grad).max() > 0


def test_a_nan_theta_gives_nan_output_not_an_out_of_bounds_gather():
    theta = np.full((2, 2, 3), np.nan, "float32")
    sampled = to_numpy(grid_sample(IMAGES, affine_grid(theta, (4, 6))))
    assert sampled.shape == (2, 4, 6, 2) and np.all(np.isnan(sampled))


def test_sampler_rejects_bad_shapes_and_padding_modes():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        grid_sample(random_inputs((1, 4, 4, 1)), random_inputs((1, 2, 2, 2)), "reflect")
    with pytest.raises(ValueError, match=r"grid \(batch, H_out, W_out, 2\)"):
        grid_sample(random_inputs((1, 4, 4, 1)), random_inputs((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="output_size must be a pair"):
        affine_grid(np.repeat(IDENTITY[None], 1, axis=0), (0, 4))


# --- the layer ------------------------------------------------------------------------------


def test_default_layer_passes_the_full_layer_checks_on_60x60_digits(tmp_path):
    x = DIGITS
    layer = SpatialTransformer(output_size=(30, 30), return_attention=True)
    # Outputs flatten as: image, then the attention dict in key order ("grid", "theta").
    check_layer(layer, x, tmp_path, [(2, 30, 30, 1), (2, 30, 30, 2), (2, 2, 3)])


def test_localisation_net_is_the_cluttered_mnist_setup_with_identity_regression():
    layer = SpatialTransformer(output_size=(30, 30))
    layer.build((None, 60, 60, 1))
    kinds = [(type(sub).__name__, getattr(sub, "filters", getattr(sub, "units", None))) for sub in layer.localization_layers]
    assert kinds == [
        ("MaxPooling2D", None),
        ("Conv2D", 20),
        ("MaxPooling2D", None),
        ("Conv2D", 20),
        ("Flatten", None),
        ("Dense", 50),
    ]
    convs = [sub for sub in layer.localization_layers if isinstance(sub, keras.layers.Conv2D)]
    assert all(conv.kernel_size == (5, 5) and conv.padding == "valid" for conv in convs)
    assert np.all(to_numpy(layer.regression.kernel) == 0)
    np.testing.assert_array_equal(to_numpy(layer.regression.bias), [1, 0, 0, 0, 1, 0])
    # 60 -> pool 30 -> conv 26 -> pool 13 -> conv 9: 9 * 9 * 20 features into the dense 50.
    expected = (5 * 5 * 1 * 20 + 20) + (5 * 5 * 20 * 20 + 20) + (9 * 9 * 20 * 50 + 50) + (50 * 6 + 6)
    assert layer.count_params() == expected


def test_at_initialisation_the_transformer_is_the_identity_resampled_to_the_output_size():
    x = DIGITS
    layer = SpatialTransformer(output_size=(30, 30), return_attention=True)
    out, attention = layer(x)
    np.testing.assert_allclose(to_numpy(attention["theta"]), np.repeat(IDENTITY[None], 2, axis=0), atol=1e-6)
    # Half-size pixel centres fall between 2x2 input blocks: bilinear = 2x2 average pooling.
    pooled = x.reshape(2, 30, 2, 30, 2, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(to_numpy(out), pooled, atol=1e-5)
    same_size = SpatialTransformer(**SMALL_LOCALIZATION)(x)
    np.testing.assert_allclose(to_numpy(same_size), x, atol=1e-5)


def test_attention_transform_regresses_scale_and_translation_only(tmp_path):
    x = SMALL
    layer = SpatialTransformer(output_size=(12, 12), transform_type="attention", return_attention=True, **SMALL_LOCALIZATION)
    model = check_layer(layer, x, tmp_path, [(2, 12, 12, 3), (2, 12, 12, 2), (2, 2, 3)])
    assert layer.regression.units == 3
    theta = to_numpy(model(x)[1]["theta"])  # check_layer left random weights in place
    np.testing.assert_array_equal(theta[:, 0, 1], 0.0)
    np.testing.assert_array_equal(theta[:, 1, 0], 0.0)
    np.testing.assert_array_equal(theta[:, 0, 0], theta[:, 1, 1])
    assert not np.allclose(theta[:, :, 2], 0.0)
    fresh = SpatialTransformer(transform_type="attention", **SMALL_LOCALIZATION)
    fresh.build((None, 32, 32, 3))
    np.testing.assert_array_equal(to_numpy(fresh.regression.bias), [1, 0, 0])


def test_from_the_identity_the_first_step_trains_the_regression_layer():
    """The zero regression kernel blocks gradients to the hidden localisation layers at the
    first step only; the regression layer learns at once and opens the path for the rest."""
    inputs = keras.Input(SMALL.shape[1:])
    model = keras.Model(inputs, SpatialTransformer(output_size=(12, 12), **SMALL_LOCALIZATION)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = {w.path: to_numpy(w) for w in model.trainable_weights}
    target = random_inputs((2, 12, 12, 3), seed=12)
    model.train_on_batch(SMALL, target)
    moved = {w.path for w in model.trainable_weights if not np.array_equal(to_numpy(w), before[w.path])}
    assert moved == {path for path in before if "regression" in path}
    model.train_on_batch(SMALL, target)
    moved = {w.path for w in model.trainable_weights if not np.array_equal(to_numpy(w), before[w.path])}
    assert moved == set(before)


def test_a_custom_localisation_network_is_serialised_with_the_layer(tmp_path):
    network = keras.Sequential(
        [
            keras.layers.Conv2D(6, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(16, activation="relu"),
        ],
        name="custom_loc",
    )
    layer = SpatialTransformer(output_size=(12, 12), localization_network=network, return_attention=True)
    model = check_layer(layer, SMALL, tmp_path, [(2, 12, 12, 3), (2, 12, 12, 2), (2, 2, 3)])
    assert layer.localization_layers == []
    assert layer.count_params() == (3 * 3 * 3 * 6 + 6) + (6 * 16 + 16) + (16 * 6 + 6)
    # conv 3x3/2 on 32x32x3 -> 15x15x6, dense 6 -> 16, regression 16 -> 6, grid and sampler.
    macs = 15 * 15 * 27 * 6 + 6 * 16 + 16 * 6 + 12 * 12 * 6 + 12 * 12 * 3 * 4
    assert layer.count_macs((2, 32, 32, 3)) == layer.count_macs((2, 32, 32, 3)) == macs
    loaded = keras.saving.load_model(tmp_path / f"{model.name}.keras", safe_mode=True)
    assert loaded.layers[1].localization_network.name == "custom_loc"


def test_count_macs_adds_localisation_net_grid_and_sampler():
    layer = SpatialTransformer(output_size=(30, 30))
    localisation = 26 * 26 * 25 * 20 + 9 * 9 * 25 * 20 * 20 + 1620 * 50 + 50 * 6
    grid_and_sampler = 30 * 30 * 6 + 30 * 30 * 1 * 4
    assert layer.count_macs((1, 60, 60, 1)) == localisation + grid_and_sampler


def test_runs_in_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = SpatialTransformer(output_size=(12, 12), return_attention=True, **SMALL_LOCALIZATION)
        out, attention = layer(SMALL)
        assert keras.backend.standardize_dtype(out.dtype) == "float16"
        assert keras.backend.standardize_dtype(attention["theta"].dtype) == "float32"
        assert np.all(np.isfinite(to_numpy(out).astype("float32")))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_arguments_and_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="transform_type must be one of"):
        SpatialTransformer(transform_type="projective")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        SpatialTransformer(padding_mode="wrap")
    with pytest.raises(ValueError, match="output_size must be a pair"):
        SpatialTransformer(output_size=(30,))
    with pytest.raises(ValueError, match="localization_network must be a Keras layer"):
        SpatialTransformer(localization_network="cnn")
    with pytest.raises(ValueError, match="too small for the localisation network"):
        SpatialTransformer()(random_inputs((1, 20, 20, 1)))
    with pytest.raises(ValueError, match="needs static height, width and channels"):
        SpatialTransformer()(keras.Input((None, None, 1)))
    flat_output = keras.Sequential([keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"must output \(batch, features\)"):
        SpatialTransformer(localization_network=flat_output)(random_inputs((1, 16, 16, 1)))
