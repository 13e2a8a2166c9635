"""Data for training and evaluation: the embedded datasets, tensorflow-datasets, image folders.

    from attention_zoo import data
    source = data.load("synthetic", "cluttered_digits", split="train", seed=0)
    batches = data.pipeline.build(source.dataset, task="classification", image_size=(60, 60), ...)

`load` dispatches on the source kind; `synthetic` holds the generators themselves (numpy
arrays, no TensorFlow needed).
"""

from attention_zoo.data import pipeline, synthetic
from attention_zoo.data.pipeline import Augmentation, normalization_for
from attention_zoo.data.sources import (
    SYNTHETIC_DATASETS,
    TFDS_DATASETS,
    DatasetError,
    DatasetInfo,
    Source,
    load_image_folder,
    load_segmentation_folder,
    load_synthetic,
    load_tfds,
    trimap_to_classes,
)

SOURCES = ("synthetic", "tfds", "folder")


def load(source, name="", *, split, task="classification", seed=0, image_size=(224, 224), channels=3,
         options=None, path="", data_dir="", download=True, validation_fraction=0.0, num_classes=0,
         class_names=(), mask_values=(), shuffle_files=False):
    """One split of a dataset as a `Source` (unbatched tf.data of (image, target) + DatasetInfo).

    source: "synthetic" (name from SYNTHETIC_DATASETS, options = generator options and split
        sizes), "tfds" (name from TFDS_DATASETS; split may be sliced, "train[:80%]"), or
        "folder" (path; classification: one sub-folder per class; segmentation: images/ and
        masks/ sub-folders), optionally with train/validation/test split sub-folders.
    shuffle_files: tfds only: read the files in a seeded random order (for training splits).
    """
    if source == "synthetic":
        loaded = load_synthetic(name, split, seed=seed, options=options)
        if loaded.info.task != task:
            raise DatasetError(f"embedded dataset {name!r} is for {loaded.info.task}, not {task}")
        return loaded
    if source == "tfds":
        return load_tfds(name, split, task=task, data_dir=data_dir, download=download, shuffle_files=shuffle_files, seed=seed)
    if source == "folder":
        if task == "classification":
            return load_image_folder(path, split, image_size, channels, validation_fraction, seed)
        return load_segmentation_folder(
            path, split, num_classes, class_names, channels, mask_values, validation_fraction, seed
        )
    raise DatasetError(f"data.source must be one of {SOURCES}; got {source!r}")


__all__ = [
    "Augmentation",
    "DatasetError",
    "DatasetInfo",
    "SOURCES",
    "SYNTHETIC_DATASETS",
    "Source",
    "TFDS_DATASETS",
    "load",
    "load_image_folder",
    "load_segmentation_folder",
    "load_synthetic",
    "load_tfds",
    "normalization_for",
    "pipeline",
    "synthetic",
    "trimap_to_classes",
]
