"""Sample inputs: the representative data that calibrates int8 and the inputs that verify parity.

A source is an array (N, H, W, C) already in the model's input range, the path of a `.npy`
file holding one, a directory of images (read recursively, resized to the export size and
normalised like the training pipelines: `normalization` "imagenet", "unit" or "none"; "auto",
the default, is what the zoo's recipes use: "imagenet" for RGB models, "unit" for grayscale
ones), or "synthetic:N": N deterministic random images, normalised the same way.
"""

import os

import numpy as np

from attention_zoo.export.errors import ExportError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Calibration ranges settle after a few hundred images; more only slow the export down.
MAX_IMAGES = 256
SYNTHETIC_PREFIX = "synthetic:"


def _normalize(pixels, normalization, channels):
    import tensorflow as tf

    from attention_zoo.data.pipeline import NORMALIZATIONS, normalize

    if normalization == "auto":
        normalization = "imagenet" if channels == 3 else "unit"
    if normalization not in NORMALIZATIONS:
        raise ExportError(f"normalization must be 'auto' or one of {NORMALIZATIONS}; got {normalization!r}")
    return np.asarray(normalize(tf.constant(pixels, tf.float32), normalization, channels), dtype="float32")


def synthetic_images(count, input_shape, normalization="auto", seed=0):
    """`count` random images of `input_shape[1:]`, 0..255 pixels normalised for the model."""
    pixels = np.random.default_rng(seed).uniform(0.0, 255.0, size=(count, *input_shape[1:]))
    return _normalize(pixels.astype("float32"), normalization, input_shape[-1])


def _image_files(directory):
    found = []
    for root, _, names in os.walk(directory):
        found.extend(os.path.join(root, name) for name in names if name.lower().endswith(IMAGE_SUFFIXES))
    return sorted(found)


def _folder_images(directory, input_shape, normalization, seed, limit):
    from attention_zoo.visualization.images import load_image

    files = _image_files(directory)
    if not files:
        raise ExportError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {directory!r}")
    if len(files) > limit:
        # A seeded choice across the whole folder, so that every class subfolder is represented.
        picks = np.random.default_rng(seed).choice(len(files), size=limit, replace=False)
        files = [files[index] for index in sorted(picks)]
    _, height, width, channels = input_shape
    pixels = np.stack([load_image(path, (height, width), channels, scale="raw") for path in files])
    return _normalize(pixels, normalization, channels)


def _checked(images, input_shape, origin):
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(input_shape[1:]):
        raise ExportError(
            f"{origin} holds inputs of shape {images.shape}; "
            f"the export takes (N, {', '.join(map(str, input_shape[1:]))})"
        )
    if not np.issubdtype(images.dtype, np.number):
        raise ExportError(f"{origin} holds {images.dtype} values; expected numbers")
    return images.astype("float32")


def load_samples(source, input_shape, *, normalization="auto", seed=0, limit=MAX_IMAGES):
    """(images (N, H, W, C) float32, a description of where they came from)."""
    if isinstance(source, np.ndarray):
        return _checked(source, input_shape, "the representative data"), f"array of {len(source)}"
    source = os.fspath(source)
    if source.startswith(SYNTHETIC_PREFIX):
        count = source[len(SYNTHETIC_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise ExportError(f"expected 'synthetic:N' with N a positive integer; got {source!r}")
        return synthetic_images(int(count), input_shape, normalization, seed), source
    if os.path.isdir(source):
        images = _folder_images(source, input_shape, normalization, seed, limit)
        return images, f"{len(images)} images from {source}"
    if source.endswith(".npy"):
        if not os.path.isfile(source):
            raise ExportError(f"representative data file {source!r} does not exist")
        return _checked(np.load(source), input_shape, source), source
    raise ExportError(
        f"representative data must be a directory of images, a .npy file or 'synthetic:N'; got {source!r}"
    )


def batches(images, batch):
    """Consecutive batches of exactly `batch` images (a LiteRT graph's batch is static); a
    remainder that does not fill a batch is left out."""
    if len(images) < batch:
        raise ExportError(f"{len(images)} sample input(s) cannot fill one batch of {batch}")
    return [images[start:start + batch] for start in range(0, len(images) - batch + 1, batch)]
