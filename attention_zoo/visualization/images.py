"""Reading an image file (PNG, JPEG, ... through Pillow) into a model's input."""

import numpy as np

from attention_zoo.pretrained import transforms

SCALES = ("unit", "imagenet", "raw")
IMAGENET_MEAN = np.array(transforms.IMAGENET_MEAN, dtype="float32")
IMAGENET_STD = np.array(transforms.IMAGENET_STD, dtype="float32")


class ImageReadError(ValueError):
    """An image file that does not exist or cannot be decoded."""


def read_image(path):
    """The decoded image at `path` (a PIL image), or an `ImageReadError` naming the file."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError("reading images needs Pillow: pip install 'attention_zoo[viz]'") from error
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not halfway through a plot
            return image.copy()
    except FileNotFoundError:
        raise ImageReadError(f"cannot read image {path!r}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"cannot read image {path!r}: it is a directory") from None
    except Exception as error:  # Pillow raises OSError, ValueError or SyntaxError for bad files
        raise ImageReadError(f"cannot read image {path!r}: not a readable image ({error})") from None


def prepare_image(image, size, channels=3, scale="unit"):
    """A PIL image -> float32 array (height, width, channels) for the model.

    size: (height, width) to resize to (bilinear; the whole image is kept, so the aspect
        ratio may change), or None to keep the image's size.
    channels: 1 (grayscale) or 3 (RGB); palettes and alpha are converted.
    scale: "unit" divides by 255; "imagenet" then normalises with the ImageNet mean and
        standard deviation (timm / torchvision weights); "raw" keeps 0..255.
    """
    from PIL import Image

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    if channels not in (1, 3):
        raise ValueError(f"images can be read for models with 1 or 3 input channels; this one takes {channels}")
    if scale == "imagenet" and channels != 3:
        raise ValueError("scale='imagenet' normalises RGB images; the model takes 1 channel (use 'unit' or 'raw')")
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None:
        height, width = (int(s) for s in size)
        if (image.height, image.width) != (height, width):
            image = image.resize((width, height), Image.BILINEAR)
    pixels = np.asarray(image, dtype="float32")
    if channels == 1:
        pixels = pixels[..., None]
    if scale == "raw":
        return pixels
    pixels = pixels / 255.0
    if scale == "imagenet":
        pixels = (pixels - IMAGENET_MEAN) / IMAGENET_STD
    return pixels


def load_image(path, size=None, channels=3, scale="unit"):
    """`read_image` then `prepare_image`: the file at `path` as a model input."""
    return prepare_image(read_image(path), size, channels, scale)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SCALES", "ImageReadError", "load_image", "prepare_image", "read_image"]
