"""The embedded datasets: deterministic by seed, the promised shapes and classes, digits inside
their canvases, clutter from other digits."""

import numpy as np
import pytest

from attention_zoo.data import synthetic

pytestmark = pytest.mark.every_backend

GENERATORS = {
    "digits": lambda seed: synthetic.render_digits(24, seed=seed),
    "cluttered": lambda seed: synthetic.digit_canvases(12, seed=seed, clutter=4),
    "segmentation": lambda seed: synthetic.shape_segmentation(8, seed=seed, size=32),
    "shapes": lambda seed: synthetic.shape_classification(8, seed=seed, size=32),
}


def arrays(made):
    return [made.images, made.labels, made.positions] if isinstance(made, synthetic.DigitCanvases) else list(made)


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_gives_identical_arrays_and_another_seed_different_ones(name):
    first, again, other = (arrays(GENERATORS[name](seed)) for seed in (7, 7, 8))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_digits_are_28x28_mnist_style_with_every_class():
    images, labels = synthetic.render_digits(200, seed=0)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert set(labels.tolist()) == set(range(10))
    for image in images:
        rows, cols = np.nonzero(image > 30)
        assert rows.size > 15, "every digit has ink"
        # The glyph fits MNIST's 20x20 box (plus antialiasing) and never touches the border.
        assert rows.max() - rows.min() < 23 and cols.max() - cols.min() < 23
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < 27 and cols.max() < 27


def test_digits_of_one_class_vary_in_shape():
    images, _ = synthetic.render_digits(20, seed=3, labels=[7] * 20)
    flat = images.reshape(20, -1).astype(np.float32)
    distances = [np.abs(flat[i] - flat[j]).mean() for i in range(20) for j in range(i + 1, 20)]
    assert min(distances) > 3.0  # no two renderings are (near) copies


def test_labels_can_be_chosen_and_are_checked():
    _, labels = synthetic.render_digits(3, seed=0, labels=[0, 5, 9])
    assert labels.tolist() == [0, 5, 9]
    with pytest.raises(ValueError, match="0..9"):
        synthetic.render_digits(2, seed=0, labels=[3, 10])


@pytest.mark.parametrize("size", [60, 100])
def test_translated_digit_lies_fully_inside_the_canvas_and_nothing_else_is_drawn(size):
    made = synthetic.digit_canvases(30, seed=1, canvas_size=size, clutter=0)
    assert made.images.shape == (30, size, size, 1) and made.images.dtype == np.uint8
    assert made.positions.min() >= 0 and made.positions.max() <= size - 28
    for image, digit, (row, col) in zip(made.images[..., 0], made.digits, made.positions):
        np.testing.assert_array_equal(image[row : row + 28, col : col + 28], digit)
        outside = image.copy()
        outside[row : row + 28, col : col + 28] = 0
        assert not outside.any()
    # Positions cover the canvas, not one spot.
    assert made.positions[:, 0].std() > (size - 28) / 8


def test_cluttered_canvases_hold_the_digit_plus_clutter_fragments():
    made = synthetic.digit_canvases(30, seed=2, canvas_size=60, clutter=4, clutter_size=8)
    cluttered = 0
    for image, digit, (row, col) in zip(made.images[..., 0], made.digits, made.positions):
        window = image[row : row + 28, col : col + 28]
        assert (window >= digit).all()  # the digit is drawn on top, whole
        outside = image.copy()
        outside[row : row + 28, col : col + 28] = 0
        cluttered += bool(outside.any())
        rows, cols = np.nonzero(outside)
        if rows.size:  # fragments are at most 8x8 each
            assert (outside > 0).sum() <= 4 * 64
    assert cluttered >= 25  # fragments sometimes hide under the digit's box, rarely all four


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(canvas_size=20), "canvas_size"), (dict(clutter=-1), "clutter"), (dict(clutter_size=40), "clutter_size")],
)
def test_canvas_options_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic.digit_canvases(2, seed=0, **kwargs)


def test_shape_segmentation_masks_label_each_pixel_with_its_shape_class():
    images, masks = synthetic.shape_segmentation(40, seed=0, size=48, max_shapes=3)
    assert images.shape == (40, 48, 48, 3) and images.dtype == np.uint8
    assert masks.shape == (40, 48, 48) and masks.dtype == np.uint8
    assert set(np.unique(masks).tolist()) == {0, 1, 2, 3}
    assert all(mask.any() for mask in masks)  # at least one shape each
    for image, mask in zip(images, masks):
        # Shapes are painted in a colour far from the background's, and masks follow them.
        inside, outside = image[mask > 0].astype(float), image[mask == 0].astype(float)
        assert np.abs(inside.mean(0) - outside.mean(0)).mean() > 15
        assert outside.std() > 5  # the background is textured, not flat


def test_shape_classification_has_five_classes_and_one_shape_per_image():
    images, labels = synthetic.shape_classification(100, seed=0, size=64)
    assert images.shape == (100, 64, 64, 3) and labels.dtype == np.int64
    assert set(labels.tolist()) == set(range(len(synthetic.SHAPE_CLASSES))) and len(synthetic.SHAPE_CLASSES) == 5


def test_splits_draw_independent_examples():
    seeds = [synthetic.split_seed(0, split, "shapes") for split in synthetic.SPLITS]
    made = [synthetic.shape_classification(4, seed=seed, size=32)[0] for seed in seeds]
    assert not np.array_equal(made[0], made[1]) and not np.array_equal(made[1], made[2])
    with pytest.raises(ValueError, match="unknown split"):
        synthetic.split_seed(0, "valid", "shapes")


def test_counts_are_checked():
    with pytest.raises(ValueError, match="count"):
        synthetic.render_digits(-1)
    assert synthetic.shape_segmentation(0, seed=0, size=32)[0].shape == (0, 32, 32, 3)
