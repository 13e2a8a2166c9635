"""Batches for `model.fit`: resize, cache, shuffle, batch, augment, normalise, prefetch.

Pure tf.data with Keras preprocessing layers for augmentation, so the same pipeline feeds the
TensorFlow, JAX and PyTorch backends (inside `tf.data.map` Keras' preprocessing layers run on
TensorFlow whatever the backend; `keras.ops` would not, so nothing here uses it).
Segmentation masks go through the same random geometric transforms as their images (Keras'
image layers take `{"images", "segmentation_masks"}` and resample masks with nearest
neighbours).
"""

import dataclasses

import tensorflow as tf

from attention_zoo.pretrained.transforms import IMAGENET_MEAN, IMAGENET_STD

# Each normalization as the per-channel (mean, std) it applies to pixels in [0, 1]: the way
# checkpoints state theirs, so a recipe's setting can be checked against its weights.
_NORMALIZATION_STATS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "unit": ((0.0,) * 3, (1.0,) * 3),
    "none": ((0.0,) * 3, (1 / 255,) * 3),
}
NORMALIZATIONS = tuple(_NORMALIZATION_STATS)
RESIZE_MODES = ("stretch", "crop")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random augmentation of training batches; factors are those of the Keras layers
    (rotation: fraction of a full turn; zoom / translation: fraction of the size)."""

    flip: str = "none"
    rotation: float = 0.0
    zoom: float = 0.0
    translation: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    def __post_init__(self):
        if self.flip not in FLIPS:
            raise ValueError(f"augment.flip must be one of {FLIPS}; got {self.flip!r}")
        for field in ("rotation", "zoom", "translation", "brightness", "contrast"):
            value = getattr(self, field)
            if not 0 <= value < 1:
                raise ValueError(f"augment.{field} must be in [0, 1); got {value!r}")

    def layers(self, seed=None, geometric_only=False):
        """The Keras preprocessing layers, in application order."""
        import keras

        seeds = iter(range(seed or 0, (seed or 0) + 16))
        out = []
        if self.flip != "none":
            out.append(keras.layers.RandomFlip(self.flip, seed=next(seeds)))
        if self.rotation:
            out.append(keras.layers.RandomRotation(self.rotation, seed=next(seeds)))
        if self.zoom:
            out.append(keras.layers.RandomZoom(self.zoom, seed=next(seeds)))
        if self.translation:
            out.append(keras.layers.RandomTranslation(self.translation, self.translation, seed=next(seeds)))
        if not geometric_only:
            if self.brightness:
                out.append(keras.layers.RandomBrightness(self.brightness, value_range=(0, 255), seed=next(seeds)))
            if self.contrast:
                out.append(keras.layers.RandomContrast(self.contrast, value_range=(0, 255), seed=next(seeds)))
        return out


def _resize(image, size, mode, method):
    if mode == "crop":
        # Central crop to the target aspect ratio, then resize: no distortion.
        shape = tf.shape(image)
        height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        target = size[0] / size[1]
        crop_h = tf.minimum(height, width * target)
        crop_w = tf.minimum(width, height / target)
        top = tf.cast((height - crop_h) / 2, tf.int32)
        left = tf.cast((width - crop_w) / 2, tf.int32)
        image = tf.image.crop_to_bounding_box(image, top, left, tf.cast(crop_h, tf.int32), tf.cast(crop_w, tf.int32))
    return tf.image.resize(image, size, method=method)


def _match_channels(image, channels):
    have = image.shape[-1]
    if have == channels or have is None:
        return image
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    if have == 4 and channels == 3:
        return image[..., :3]
    raise ValueError(f"cannot turn {have}-channel images into {channels}-channel ones")


def normalize(images, mode, channels):
    """uint8-range floats -> the model's input range. Images with other than three channels
    get the channel average of the mean and std."""
    if mode not in _NORMALIZATION_STATS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}; got {mode!r}")
    if mode == "none":
        return images  # the table's (0, 1/255) exactly, without dividing and multiplying by 255
    mean, std = _NORMALIZATION_STATS[mode]
    if channels != 3:
        mean, std = (sum(mean) / 3,) * channels, (sum(std) / 3,) * channels
    return (images / 255.0 - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def normalization_for(mean, std):
    """The normalization mode that applies `mean` and `std` (per channel, on pixels in [0, 1]),
    or None when none does."""
    if len(mean) != 3 or len(std) != 3:
        return None
    for mode, (mode_mean, mode_std) in _NORMALIZATION_STATS.items():
        if all(abs(a - b) < 1e-3 for a, b in zip((*mean, *std), (*mode_mean, *mode_std))):
            return mode
    return None


def build(
    dataset,
    *,
    task,
    image_size,
    channels,
    num_classes,
    batch_size,
    training,
    augmentation=None,
    normalization="imagenet",
    resize="stretch",
    one_hot=False,
    shuffle_buffer=1024,
    cache=True,
    drop_remainder=False,
    seed=0,
):
    """An unbatched `(image, target)` dataset -> batches ready for `model.fit` / `evaluate`.

    Classification targets become one-hot vectors when `one_hot` (needed for label smoothing);
    segmentation masks stay sparse (batch, H, W, 1) int32 unless `one_hot`.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}; got {normalization!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}; got {resize!r}")
    size = tuple(int(s) for s in image_size)
    segmentation = task == "segmentation"

    def prepare(image, target):
        image = _match_channels(tf.cast(image, tf.float32), channels)
        image = _resize(image, size, resize, "bilinear")
        # Kept as uint8 until the batch is normalised: a cached dataset takes a quarter of the memory.
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        image.set_shape((*size, channels))
        if segmentation:
            target = tf.cast(target, tf.int32)
            if target.shape.rank == 2:
                target = target[..., None]
            target = tf.cast(_resize(target, size, resize, "nearest"), tf.int32)
            target.set_shape((*size, 1))
        else:
            target = tf.cast(target, tf.int64)
        return image, target

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if training and shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    layers = augmentation.layers(seed=seed, geometric_only=False) if (training and augmentation) else []
    if layers:

        def augment(images, targets):
            if segmentation:
                data = {"images": images, "segmentation_masks": targets}
                for layer in layers:
                    data = layer(data, training=True)
                return data["images"], tf.cast(tf.round(data["segmentation_masks"]), tf.int32)
            for layer in layers:
                images = layer(images, training=True)
            return images, targets

        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)

    def finish(images, targets):
        images = normalize(tf.cast(images, tf.float32), normalization, channels)
        if one_hot:
            depth = num_classes
            targets = tf.one_hot(targets[..., 0] if segmentation else targets, depth)
        return images, targets

    return dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
