"""How images must be prepared for a set of pretrained weights.

Every checkpoint was trained and evaluated with one recipe: RGB images scaled to [0, 1],
normalised per channel with `mean`/`std`, and at evaluation resized so that a centre crop
of `input_size` covers `crop_pct` of the shorter side (timm's and torchvision's eval
transform: resize the shorter side to `input_size / crop_pct`, centre-crop `input_size`).
Feeding images prepared differently (e.g. [0, 255] pixels or BGR) silently costs accuracy.
"""

import dataclasses
import math

from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The evaluation preprocessing of one checkpoint.

    input_size: (height, width) the weights were evaluated at.
    crop_pct: fraction of the resized shorter side kept by the centre crop.
    interpolation: resampling of the resize ("bilinear" or "bicubic").
    mean, std: per-channel normalisation of RGB values in [0, 1].
    test_input_size, test_crop_pct: a larger evaluation size the source also reports (timm's
        "test" size), or None.
    """

    input_size: tuple = (224, 224)
    crop_pct: float = 0.875
    crop_mode: str = "center"
    interpolation: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    test_input_size: tuple = None
    test_crop_pct: float = None

    def __post_init__(self):
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be (height, width); got {self.input_size!r}")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1]; got {self.crop_pct!r}")
        if self.crop_mode != "center":
            raise ValueError(f"only centre crops are supported; got crop_mode={self.crop_mode!r}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}; got {self.interpolation!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 channels and std > 0; got {self.mean!r}, {self.std!r}")

    @classmethod
    def from_dict(cls, config):
        config = dict(config)
        for key in ("input_size", "mean", "std", "test_input_size"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(**config)

    def to_dict(self):
        return dataclasses.asdict(self)

    def __call__(self, images, input_size=None, crop_pct=None):
        return prepare_images(images, self, input_size=input_size, crop_pct=crop_pct)


def prepare_images(images, preprocessing, *, input_size=None, crop_pct=None):
    """Turns RGB images with values in [0, 255] into a batch the pretrained model expects.

    Args:
        images: one image (H, W, 3) or a batch (N, H, W, 3) of equally sized images, uint8 or
            float, RGB, values in [0, 255]; a tensor of any backend or a NumPy array.
        preprocessing: a `Preprocessing` (e.g. `attention_zoo.pretrained.preprocessing(name)`).
        input_size, crop_pct: override the recipe's (e.g. its `test_input_size`).

    Returns:
        float32 batch (N, input_h, input_w, 3): centre crop, resize, scale to [0, 1], normalise.

    The crop is taken before the resize (same region as the reference resize-then-crop, so
    results differ only by resampling at the borders); the resize is antialiased like PIL's.
    """
    height_out, width_out = tuple(input_size or preprocessing.input_size)
    crop_pct = crop_pct or preprocessing.crop_pct
    x = ops.convert_to_tensor(images)
    if len(x.shape) == 3:
        x = x[None]
    if len(x.shape) != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (H, W, 3) or (N, H, W, 3) RGB; got shape {tuple(x.shape)}")
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError("prepare_images needs images of known size; prepare them one size at a time")
    x = ops.cast(x, "float32")
    # The reference resizes the shorter side to floor(size / crop_pct) and crops `size`: in the
    # original image that is a centred window of size * shorter / floor(size / crop_pct).
    shorter = min(height, width)
    crop_h = min(height, max(1, round(height_out * shorter / math.floor(height_out / crop_pct))))
    crop_w = min(width, max(1, round(width_out * shorter / math.floor(width_out / crop_pct))))
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    x = x[:, top : top + crop_h, left : left + crop_w, :]
    if (crop_h, crop_w) != (height_out, width_out):
        x = ops.image.resize(x, (height_out, width_out), interpolation=preprocessing.interpolation, antialias=True)
        # PIL resamples uint8 images, so bicubic overshoot is clipped back to the pixel range.
        x = ops.clip(x, 0.0, 255.0)
    mean = ops.convert_to_tensor([255.0 * m for m in preprocessing.mean], dtype="float32")
    std = ops.convert_to_tensor([255.0 * s for s in preprocessing.std], dtype="float32")
    return (x - mean) / std


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocessing", "prepare_images"]
