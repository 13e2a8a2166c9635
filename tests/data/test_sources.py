"""Loading: tensorflow-datasets by name (exercised offline with tfds' mock data), image folders,
the embedded datasets; and the tf.data pipeline that batches, augments and normalises them."""

import numpy as np
import pytest
import tensorflow as tf

from attention_zoo import data
from attention_zoo.data import pipeline

pytestmark = pytest.mark.every_backend

tfds = pytest.importorskip("tensorflow_datasets")  # the `test` extra installs it


def batches(source, task, size=(24, 20), **kwargs):
    options = dict(task=task, image_size=size, channels=3, num_classes=source.info.num_classes, batch_size=4,
                   training=False, one_hot=False, cache=False)
    options.update(kwargs)
    return pipeline.build(source.dataset, **options)


@pytest.mark.parametrize(
    "name, split, num_classes",
    [("tf_flowers", "train[:75%]", 5), ("imagenette", "validation", 10), ("cifar10", "test", 10),
     ("oxford_iiit_pet", "train", 37)],
)
def test_tfds_classification_loads_through_the_real_tfds_code(name, split, num_classes):
    with tfds.testing.mock_data(num_examples=6):
        source = data.load("tfds", name, split=split, task="classification")
        assert source.info.num_classes == num_classes and len(source.info.class_names) == num_classes
        images, labels = next(iter(batches(source, "classification", one_hot=True)))
    # Mock images come in random sizes: the pipeline resizes them all.
    assert images.shape == (4, 24, 20, 3) and images.dtype == tf.float32
    assert labels.shape == (4, num_classes) and np.allclose(labels.numpy().sum(-1), 1)


def test_pet_segmentation_maps_the_trimap_to_three_zero_based_classes():
    with tfds.testing.mock_data(num_examples=6):
        source = data.load("tfds", "oxford_iiit_pet", split="test", task="segmentation")
        images, masks = next(iter(batches(source, "segmentation")))
    assert source.info.class_names == ("pet", "background", "border")
    assert images.shape == (4, 24, 20, 3)
    # Mock masks get their own random size; both are resized to the same grid.
    assert masks.shape == (4, 24, 20, 1) and masks.dtype == tf.int32
    assert set(np.unique(masks.numpy())) <= {0, 1, 2}


def test_trimap_values_1_2_3_become_pet_background_border_0_1_2():
    trimap = tf.constant([[[1], [2]], [[3], [1]]], tf.uint8)
    np.testing.assert_array_equal(data.trimap_to_classes(trimap).numpy()[..., 0], [[0, 1], [2, 0]])


@pytest.mark.parametrize(
    "name, split, match",
    [
        ("tf_flower", "train", "unknown tfds dataset 'tf_flower'.*Did you mean 'tf_flowers'"),
        ("tf_flowers", "test", "tf_flowers has no split 'test'.*splits are train.*train\\[:80%\\]"),
        ("cifar10", "train[:50%]+tets", "no split 'tets'.*Did you mean 'test'"),
        ("imagenette", "train[:10", "cannot parse split"),
        ("cifar10", "", "non-empty"),
    ],
)
def test_bad_tfds_names_and_splits_are_clear_errors(name, split, match):
    with tfds.testing.mock_data(num_examples=2):  # mock data would accept any split name
        with pytest.raises(data.DatasetError, match=match):
            data.load("tfds", name, split=split)


def test_tfds_dataset_without_segmentation_targets_says_so():
    with pytest.raises(data.DatasetError, match="tf_flowers has no segmentation targets"):
        data.load("tfds", "tf_flowers", split="train", task="segmentation")


def test_sliced_and_joined_splits_are_accepted():
    with tfds.testing.mock_data(num_examples=4):
        source = data.load("tfds", "cifar10", split="train[:50%]+test", task="classification")
    assert source.info.num_classes == 10


def write_images(directory, count, size=(12, 10), value=0):
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = np.full((*size, 3), value + index, np.uint8)
        Image.fromarray(pixels).save(directory / f"img{index}.png")


def test_image_folder_classes_come_from_sub_folders_and_validation_is_held_out(tmp_path):
    for name, value in (("cat", 10), ("dog", 100), ("emu", 200)):
        write_images(tmp_path / name, 10, value=value)
    train = data.load("folder", path=str(tmp_path), split="train", image_size=(16, 16), validation_fraction=0.2, seed=1)
    validation = data.load("folder", path=str(tmp_path), split="validation", image_size=(16, 16),
                           validation_fraction=0.2, seed=1)
    assert train.info.class_names == ("cat", "dog", "emu") and train.info.num_classes == 3
    assert train.info.num_examples == 24 and validation.info.num_examples == 6
    images, labels = next(iter(batches(train, "classification", size=(16, 16), normalization="none")))
    assert images.shape == (4, 16, 16, 3)
    # Labels follow the folders: cat images are dark, emu images bright.
    for image, label in zip(images.numpy(), labels.numpy()):
        assert (image.mean() < 50) == (label == 0) and (image.mean() > 190) == (label == 2)
    # The seeded split keeps train and validation apart.
    seen = {float(x.numpy().mean()) for x, _ in train.dataset}
    held = {float(x.numpy().mean()) for x, _ in validation.dataset}
    assert not seen & held


def test_image_folder_with_split_sub_folders_uses_them(tmp_path):
    for split in ("train", "val", "test"):
        for name in ("a", "b"):
            write_images(tmp_path / split / name, 3)
    for split in ("train", "validation", "test"):
        source = data.load("folder", path=str(tmp_path), split=split, image_size=(8, 8))
        assert source.info.num_examples == 6 and source.info.class_names == ("a", "b")


@pytest.mark.parametrize(
    "layout, split, match",
    [
        ("empty", "train", "no images found"),
        ("one_empty_class", "train", "class folder\\(s\\) \\['b'\\].*hold no images"),
        ("flat", "validation", "no validation/ folder.*validation_fraction"),
        ("flat", "test", "no test split"),
        ("flat", "valid", "unknown split 'valid'"),
        ("missing", "train", "is not a folder"),
    ],
)
def test_folder_errors_name_the_problem(tmp_path, layout, split, match):
    if layout == "one_empty_class":
        write_images(tmp_path / "a", 2)
        (tmp_path / "b").mkdir()
    elif layout == "flat":
        write_images(tmp_path / "a", 2)
    elif layout == "empty":
        (tmp_path / "a").mkdir()
    path = tmp_path / "nowhere" if layout == "missing" else tmp_path
    with pytest.raises(data.DatasetError, match=match):
        data.load("folder", path=str(path), split=split, image_size=(8, 8))


def write_pairs(root, stems, size=(12, 12)):
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for index, stem in enumerate(stems):
        mask = np.zeros(size, np.uint8)
        mask[: size[0] // 2] = 255  # raw value 255 marks the object
        image = np.repeat(mask[..., None], 3, -1) // 2 + index
        Image.fromarray(image).save(root / "images" / f"{stem}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")


def test_segmentation_folder_pairs_images_and_masks_by_stem_and_maps_mask_values(tmp_path):
    write_pairs(tmp_path, [f"p{i}" for i in range(5)])
    source = data.load("folder", path=str(tmp_path), split="train", task="segmentation", num_classes=2,
                       mask_values=(0, 255), class_names=("background", "object"))
    assert source.info.num_examples == 5 and source.info.class_names == ("background", "object")
    images, masks = next(iter(batches(source, "segmentation", size=(12, 12))))
    assert masks.shape == (4, 12, 12, 1)
    np.testing.assert_array_equal(masks.numpy()[:, :6], 1)
    np.testing.assert_array_equal(masks.numpy()[:, 6:], 0)


def test_segmentation_folder_with_unpaired_files_is_an_error(tmp_path):
    write_pairs(tmp_path, ["a", "b"])
    (tmp_path / "masks" / "b.png").rename(tmp_path / "masks" / "c.png")
    with pytest.raises(data.DatasetError, match="no partner with the same stem.*'b', 'c'"):
        data.load("folder", path=str(tmp_path), split="train", task="segmentation", num_classes=2)


def test_embedded_datasets_load_deterministically_with_their_options():
    options = {"train": 6, "canvas_size": 40, "clutter": 2}
    first = data.load("synthetic", "cluttered_digits", split="train", seed=3, options=options)
    again = data.load("synthetic", "cluttered_digits", split="train", seed=3, options=options)
    assert first.info.num_examples == 6 and first.info.channels == 1 and first.info.num_classes == 10
    for (a, la), (b, lb) in zip(first.dataset, again.dataset):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert a.shape == (40, 40, 1) and int(la) == int(lb)


@pytest.mark.parametrize(
    "name, split, options, match",
    [
        ("clutered_digits", "train", None, "unknown embedded dataset.*Did you mean 'cluttered_digits'"),
        ("shapes", "train", {"colour": 1}, "has no option\\(s\\) \\['colour'\\]"),
        ("shapes", "dev", None, "unknown split 'dev'"),
    ],
)
def test_embedded_dataset_errors(name, split, options, match):
    with pytest.raises(data.DatasetError, match=match):
        data.load("synthetic", name, split=split, options=options)


def test_unknown_source_is_an_error():
    with pytest.raises(data.DatasetError, match="data.source must be one of"):
        data.load("kaggle", "x", split="train")


def test_segmentation_augmentation_moves_masks_with_their_images():
    # Image brightness encodes the class, so any misaligned transform shows up as disagreement.
    images, masks = data.synthetic.shape_segmentation(8, seed=0, size=32)
    painted = (masks[..., None] * 60).repeat(3, -1).astype(np.uint8)
    source = tf.data.Dataset.from_tensor_slices((painted, masks[..., None].astype(np.int32)))
    augmentation = data.Augmentation(flip="horizontal_and_vertical", rotation=0.2, zoom=0.2, translation=0.1)
    built = pipeline.build(source, task="segmentation", image_size=(32, 32), channels=3, num_classes=4,
                           batch_size=8, training=True, augmentation=augmentation, normalization="none", seed=1)
    out_images, out_masks = next(iter(built))
    changed = not np.array_equal(out_masks.numpy()[..., 0], masks)
    recovered = np.round(out_images.numpy()[..., 0] / 60).astype(int)
    agreement = (recovered == out_masks.numpy()[..., 0]).mean()
    assert changed and agreement > 0.93
    assert out_masks.dtype == tf.int32 and set(np.unique(out_masks.numpy())) <= {0, 1, 2, 3}


def test_pipeline_normalises_and_one_hot_encodes():
    images = np.full((4, 8, 8, 1), 255, np.uint8)
    source = tf.data.Dataset.from_tensor_slices((images, np.arange(4)))
    built = pipeline.build(source, task="classification", image_size=(8, 8), channels=3, num_classes=4,
                           batch_size=4, training=False, normalization="imagenet", one_hot=True)
    x, y = next(iter(built))
    # Grey images feed RGB models; ImageNet statistics per channel.
    np.testing.assert_allclose(x.numpy()[0, 0, 0], (1 - np.array(pipeline.IMAGENET_MEAN)) / pipeline.IMAGENET_STD,
                               rtol=1e-5)
    np.testing.assert_array_equal(y.numpy(), np.eye(4))
