"""Where examples come from: tensorflow-datasets by name, image folders, the embedded datasets.

Each loader returns a `Source`: an unbatched `tf.data.Dataset` of `(image, target)` pairs
(image uint8 or float32 (H, W, C) of any size; target an int64 class, or an int32 (H, W, 1)
mask of class indices) and a `DatasetInfo`. Resizing, augmentation and batching happen in
`attention_zoo.data.pipeline`. All of it is plain tf.data, so it feeds `model.fit` on every
Keras backend.
"""

import dataclasses
import difflib
import functools
import os
import pathlib
import re

import numpy as np
import tensorflow as tf

from attention_zoo.data import synthetic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLITS = ("train", "validation", "test")
TASKS = ("classification", "segmentation")


class DatasetError(ValueError):
    """A dataset that cannot be loaded as asked: unknown name, bad split, empty folder."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    num_classes: int
    class_names: tuple
    channels: int
    num_examples: int = None  # None where the source cannot tell without reading it all


@dataclasses.dataclass(frozen=True)
class Source:
    dataset: tf.data.Dataset
    info: DatasetInfo


def _closest(name, names):
    close = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_task(task):
    if task not in TASKS:
        raise DatasetError(f"task must be one of {TASKS}; got {task!r}")


# tensorflow-datasets.


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    """What this package knows of a tfds dataset; `splits` are its real split names (mock data
    accepts any name, so the check cannot be left to tfds)."""

    splits: tuple
    tasks: tuple
    num_classes: dict  # task -> classes
    class_names: dict = dataclasses.field(default_factory=dict)  # task -> names where tfds has none
    channels: int = 3


TRIMAP_CLASSES = ("pet", "background", "border")

TFDS_DATASETS = {
    "tf_flowers": TfdsSpec(splits=("train",), tasks=("classification",), num_classes={"classification": 5}),
    "imagenette": TfdsSpec(
        splits=("train", "validation"), tasks=("classification",), num_classes={"classification": 10}
    ),
    "cifar10": TfdsSpec(splits=("train", "test"), tasks=("classification",), num_classes={"classification": 10}),
    "oxford_iiit_pet": TfdsSpec(
        splits=("train", "test"),
        tasks=("classification", "segmentation"),
        num_classes={"classification": 37, "segmentation": 3},
        class_names={"segmentation": TRIMAP_CLASSES},
    ),
}

# One part of a tfds split expression: a name, optionally sliced ("train[:80%]", "test[10:20]").
_SPLIT_PART = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(\[[^\[\]]*\])?\s*$")


def check_tfds_split(name, split):
    """Raises DatasetError unless every part of `split` ("a[:80%]+b") names a real split."""
    base = name.split("/")[0]
    valid = TFDS_DATASETS[base].splits
    if not isinstance(split, str) or not split.strip():
        raise DatasetError(f"{name}: split must be a non-empty string such as {valid[0]!r}; got {split!r}")
    for part in split.split("+"):
        match = _SPLIT_PART.match(part)
        if not match:
            raise DatasetError(f"{name}: cannot parse split {split!r} (expected e.g. 'train' or 'train[:80%]')")
        if match.group(1) not in valid:
            raise DatasetError(
                f"{name} has no split {match.group(1)!r} (in {split!r}); its splits are {', '.join(valid)}. "
                f"Slice one to make others, e.g. '{valid[0]}[:80%]' and '{valid[0]}[80%:]'."
                + _closest(match.group(1), valid)
            )


def trimap_to_classes(mask):
    """Oxford-IIIT Pet trimap (1 pet, 2 background, 3 border) -> int32 classes 0, 1, 2.

    Values outside 1..3 never occur in the real data (tfds' mock data draws random bytes);
    they are clipped into the nearest trimap class so a mocked pipeline still has 3 classes.
    """
    mask = tf.cast(mask, tf.int32)
    return tf.clip_by_value(mask, 1, 3) - 1


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "Loading tfds datasets needs tensorflow-datasets: pip install 'attention_zoo[tfds]'"
        ) from error
    return tfds


def load_tfds(name, split, task="classification", data_dir=None, download=True, shuffle_files=False, seed=None):
    """A tfds dataset as a `Source`, e.g. load_tfds("oxford_iiit_pet", "train", "segmentation")."""
    _check_task(task)
    base = name.split("/")[0] if isinstance(name, str) else name
    if base not in TFDS_DATASETS:
        raise DatasetError(
            f"unknown tfds dataset {name!r}; supported: {', '.join(sorted(TFDS_DATASETS))}."
            + _closest(base, TFDS_DATASETS)
            + " Other data: an image folder (source='folder') or an embedded dataset (source='synthetic')."
        )
    spec = TFDS_DATASETS[base]
    if task not in spec.tasks:
        raise DatasetError(f"{name} has no {task} targets; it supports {', '.join(spec.tasks)}")
    check_tfds_split(name, split)
    tfds = _import_tfds()
    read_config = tfds.ReadConfig(shuffle_seed=seed) if shuffle_files and seed is not None else None
    try:
        dataset, info = tfds.load(
            name,
            split=split,
            as_supervised=task == "classification",
            download=download,
            data_dir=data_dir or None,
            with_info=True,
            shuffle_files=shuffle_files,
            read_config=read_config,
        )
    except Exception as error:  # tfds raises many types; all mean "not available here"
        hint = (
            "It is not prepared in the data directory and download=false: set data.download=true on a "
            "machine with internet access, or point data.data_dir at a prepared copy."
            if not download
            else "Downloading needs internet access; offline, point data.data_dir at a prepared copy and "
            "set data.download=false, or use an image folder or an embedded dataset."
        )
        raise DatasetError(f"cannot load tfds dataset {name!r} split {split!r}: {type(error).__name__}: {error}. {hint}") from error

    if task == "classification":
        names = tuple(info.features["label"].names) if "label" in info.features else ()
    else:
        names = spec.class_names[task]
        dataset = dataset.map(
            lambda example: (example["image"], trimap_to_classes(example["segmentation_mask"])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    num_classes = spec.num_classes[task]
    names = names if len(names) == num_classes else tuple(str(i) for i in range(num_classes))
    cardinality = int(dataset.cardinality())
    info = DatasetInfo(name, task, num_classes, names, spec.channels, cardinality if cardinality >= 0 else None)
    return Source(dataset, info)


# Image folders.

_SPLIT_DIRECTORIES = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid"),
    "test": ("test", "testing"),
}


def _images_in(directory):
    return sorted(
        path for path in pathlib.Path(directory).rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def _split_directory(path, split):
    """(directory, subset) for `split`: a split sub-folder if the tree has them, else the root
    with subset "training"/"validation" of a seeded validation_fraction split."""
    root = pathlib.Path(os.path.expanduser(str(path)))
    if not str(path):
        raise DatasetError("data.path is empty: give the folder with --set data.path=/path/to/images")
    if not root.is_dir():
        raise DatasetError(f"data.path {str(root)!r} is not a folder")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} for an image folder; use one of {SPLITS}" + _closest(split, SPLITS))
    present = {
        name: root / alias
        for name, aliases in _SPLIT_DIRECTORIES.items()
        for alias in aliases
        if (root / alias).is_dir()
    }
    if split in present:
        return present[split], None
    if present:
        raise DatasetError(
            f"{root} has split folders {sorted(p.name for p in present.values())} but none for {split!r} "
            f"(looked for {', '.join(_SPLIT_DIRECTORIES[split])})"
        )
    if split == "test":
        raise DatasetError(
            f"{root} has no split folders, so it has no test split; evaluate on 'validation' "
            "(with data.validation_fraction > 0) or add train/ and test/ sub-folders"
        )
    return root, "training" if split == "train" else "validation"


def _require_images(directory, what="images"):
    found = _images_in(directory)
    if not found:
        raise DatasetError(
            f"no {what} found in {str(directory)!r} (looked for {', '.join(IMAGE_EXTENSIONS)} files in it and its "
            "sub-folders)"
        )
    return found


def load_image_folder(path, split, image_size, channels=3, validation_fraction=0.0, seed=0):
    """A classification folder, one sub-folder per class (`root/<class>/*.jpg`), optionally
    split into `root/train/<class>`, `root/validation/<class>`, `root/test/<class>`.

    Without split folders, train and validation are a seeded `validation_fraction` split of the
    root. Images come resized to `image_size` (Keras' `image_dataset_from_directory`).
    """
    import keras

    directory, subset = _split_directory(path, split)
    _require_images(directory)
    class_names = sorted(entry.name for entry in directory.iterdir() if entry.is_dir())
    if not class_names:
        raise DatasetError(f"{str(directory)!r} has images but no class sub-folders (expected <folder>/<class>/<image>)")
    empty = [name for name in class_names if not _images_in(directory / name)]
    if empty:
        raise DatasetError(f"class folder(s) {empty} in {str(directory)!r} hold no images")
    if subset is not None and not 0 < validation_fraction < 1:
        if subset == "validation":
            raise DatasetError(
                f"{str(directory)!r} has no validation/ folder: set data.validation_fraction (e.g. 0.2) to hold "
                "out part of it, or add train/ and validation/ sub-folders"
            )
        subset = None
    dataset = keras.utils.image_dataset_from_directory(
        str(directory),
        labels="inferred",
        label_mode="int",
        class_names=class_names,
        color_mode={1: "grayscale", 3: "rgb", 4: "rgba"}[channels],
        batch_size=None,
        image_size=tuple(image_size),
        shuffle=subset is not None,  # the split must be random, and seeded
        seed=seed,
        validation_split=validation_fraction if subset else None,
        subset=subset,
        verbose=False,
    )
    dataset = dataset.map(lambda image, label: (image, tf.cast(label, tf.int64)))
    cardinality = int(dataset.cardinality())
    name = f"folder:{pathlib.Path(path).name}"
    info = DatasetInfo(name, "classification", len(class_names), tuple(class_names), channels,
                       cardinality if cardinality >= 0 else None)
    return Source(dataset, info)


def _decode(path, channels):
    return tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)


def _map_mask_values(mask, mask_values):
    """Raw mask values -> class indices: mask_values[i] becomes class i; others keep their value."""
    if not mask_values:
        return tf.cast(mask, tf.int32)
    mask = tf.cast(mask, tf.int32)
    out = mask
    for index, value in enumerate(mask_values):
        out = tf.where(mask == int(value), index, out)
    return out


def load_segmentation_folder(path, split, num_classes, class_names=(), channels=3, mask_values=(),
                             validation_fraction=0.0, seed=0):
    """Segmentation pairs `images/<stem>.<ext>` + `masks/<stem>.png` (masks hold class indices,
    or the raw values listed in `mask_values`), in `path` or in `path/<split>/`."""
    directory, subset = _split_directory(path, split)
    if not (directory / "images").is_dir() or not (directory / "masks").is_dir():
        raise DatasetError(f"{str(directory)!r} needs images/ and masks/ sub-folders (pairs matched by file name stem)")
    images = {p.stem: p for p in _require_images(directory / "images")}
    masks = {p.stem: p for p in _require_images(directory / "masks", "masks")}
    unmatched = sorted(set(images) ^ set(masks))
    if unmatched:
        raise DatasetError(
            f"{len(unmatched)} image(s)/mask(s) in {str(directory)!r} have no partner with the same stem, "
            f"e.g. {unmatched[:5]}"
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise DatasetError(f"a segmentation folder needs data.num_classes (at least 2); got {num_classes!r}")
    stems = sorted(images)
    if subset is not None:
        if not 0 < validation_fraction < 1:
            if subset == "validation":
                raise DatasetError(
                    f"{str(directory)!r} has no validation/ folder: set data.validation_fraction or add split folders"
                )
        else:
            order = np.random.default_rng(seed).permutation(len(stems))
            held_out = int(round(len(stems) * validation_fraction))
            chosen = order[:held_out] if subset == "validation" else order[held_out:]
            stems = [stems[i] for i in sorted(chosen)]
    image_paths = [str(images[s]) for s in stems]
    mask_paths = [str(masks[s]) for s in stems]
    mask_values = tuple(mask_values)

    def load(image_path, mask_path):
        image = _decode(image_path, channels)
        mask = _map_mask_values(_decode(mask_path, 1), mask_values)
        return image, mask

    dataset = tf.data.Dataset.from_tensor_slices((image_paths, mask_paths)).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    names = tuple(class_names) if class_names else tuple(str(i) for i in range(num_classes))
    if len(names) != num_classes:
        raise DatasetError(f"data.class_names has {len(names)} names for {num_classes} classes")
    info = DatasetInfo(f"folder:{pathlib.Path(path).name}", "segmentation", num_classes, names, channels, len(stems))
    return Source(dataset, info)


# Embedded datasets.


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    task: str
    class_names: tuple
    channels: int
    options: dict  # defaults; the split sizes are the options "train", "validation", "test"
    make: callable  # (count, seed, **options) -> (images, targets)


def _digits(count, seed):
    images, labels = synthetic.render_digits(count, seed=seed)
    return images[..., None], labels


def _canvases(count, seed, canvas_size, clutter, clutter_size):
    made = synthetic.digit_canvases(count, seed=seed, canvas_size=canvas_size, clutter=clutter, clutter_size=clutter_size)
    return made.images, made.labels


def _segmentation(count, seed, size, max_shapes):
    images, masks = synthetic.shape_segmentation(count, seed=seed, size=size, max_shapes=max_shapes)
    return images, masks[..., None].astype(np.int32)


DIGIT_NAMES = tuple(str(d) for d in range(10))
_COUNTS = dict(train=10000, validation=1000, test=2000)

SYNTHETIC_DATASETS = {
    "digits": SyntheticSpec("classification", DIGIT_NAMES, 1, dict(_COUNTS), _digits),
    "translated_digits": SyntheticSpec(
        "classification", DIGIT_NAMES, 1, dict(_COUNTS, canvas_size=60, clutter=0, clutter_size=8), _canvases
    ),
    "cluttered_digits": SyntheticSpec(
        "classification", DIGIT_NAMES, 1, dict(_COUNTS, canvas_size=60, clutter=4, clutter_size=8), _canvases
    ),
    "shapes": SyntheticSpec(
        "classification", synthetic.SHAPE_CLASSES, 3, dict(train=800, validation=200, test=200, size=64),
        synthetic.shape_classification,
    ),
    "shape_segmentation": SyntheticSpec(
        "segmentation", synthetic.SHAPE_SEGMENTATION_CLASSES, 3,
        dict(train=1000, validation=200, test=200, size=64, max_shapes=4), _segmentation,
    ),
}


def synthetic_options(name, options=None):
    """The dataset's defaults updated by `options`; unknown keys are an error."""
    if name not in SYNTHETIC_DATASETS:
        raise DatasetError(
            f"unknown embedded dataset {name!r}; available: {', '.join(SYNTHETIC_DATASETS)}."
            + _closest(name, SYNTHETIC_DATASETS)
        )
    spec = SYNTHETIC_DATASETS[name]
    options = dict(options or {})
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise DatasetError(f"embedded dataset {name!r} has no option(s) {unknown}; its options: {', '.join(spec.options)}")
    return {**spec.options, **options}


@functools.lru_cache(maxsize=16)
def _generate(name, split, seed, frozen_options):
    spec = SYNTHETIC_DATASETS[name]
    options = dict(frozen_options)
    count = options.pop(split)
    for other in SPLITS:
        options.pop(other, None)
    return spec.make(count, synthetic.split_seed(seed, split, name), **options)


def load_synthetic(name, split, seed=0, options=None):
    """An embedded dataset's split as a `Source`; the same (seed, options) give the same examples."""
    options = synthetic_options(name, options)
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} for embedded dataset {name!r}; use one of {SPLITS}" + _closest(split, SPLITS))
    spec = SYNTHETIC_DATASETS[name]
    images, targets = _generate(name, split, int(seed), tuple(sorted(options.items())))
    dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    info = DatasetInfo(name, spec.task, len(spec.class_names), spec.class_names, spec.channels, len(images))
    return Source(dataset, info)
