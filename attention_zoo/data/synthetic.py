"""Datasets the project makes itself: deterministic by seed, no download, numpy arrays out.

- `render_digits`: 28x28 handwriting-like digits drawn with Pillow's built-in font (the
  scalable default font where Pillow has FreeType, else its bitmap font) under random scale,
  aspect, rotation, shear and stroke width, placed MNIST-style (a 20-pixel box centred by the
  centre of mass). A stand-in for MNIST where MNIST cannot be downloaded.
- `digit_canvases`: one digit at a random position on a larger canvas, optionally with k
  random 8x8 fragments cut from other digits: the translated and cluttered digit benchmarks of
  RAM (60x60), the STN (60x60) and the DCN (100x100).
- `shape_segmentation`: circles, squares and triangles on textured backgrounds with per-pixel
  class masks (0 = background, 1 = circle, 2 = square, 3 = triangle).
- `shape_classification`: one of five shapes per image on a textured background; small enough
  that a small zoo model learns it in minutes on a laptop CPU (the quickstart).

Every generator takes a `seed`; the same seed gives identical arrays. `SPLIT_SEEDS` derives
independent streams for train / validation / test from one recipe seed.
"""

import dataclasses
import functools
import math
import zlib

import numpy as np

DIGIT_SIZE = 28
DIGIT_BOX = 20  # MNIST: digits fit a 20x20 box inside the 28x28 image
SPLITS = ("train", "validation", "test")
SHAPE_SEGMENTATION_CLASSES = ("background", "circle", "square", "triangle")
SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross")


def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFilter, ImageFont
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The embedded datasets draw with Pillow: pip install 'attention_zoo[train]' (or pip install pillow)"
        ) from error
    return Image, ImageDraw, ImageFilter, ImageFont


def split_seed(seed, split, dataset=""):
    """An independent seed sequence per (seed, split, dataset): splits never share examples'
    random streams, and neither do two datasets made from the same recipe seed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the embedded datasets have splits {SPLITS}")
    return [int(seed), SPLITS.index(split), zlib.crc32(dataset.encode())]


def _rng(seed):
    return np.random.default_rng(seed)


def _check_count(count):
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative integer; got {count!r}")
    return int(count)


# Digits.


@functools.lru_cache(maxsize=None)
def _fonts():
    _, _, _, ImageFont = _pil()
    try:
        scalable = ImageFont.load_default(size=48)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: bitmap font only
        scalable = None
    bitmap = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") else None
    if bitmap is None and scalable is None:  # pragma: no cover
        bitmap = ImageFont.load_default()
    return scalable, bitmap


def _draw_glyph(digit, rng):
    """A large white-on-black rendering of `digit` with random stroke width and font style."""
    Image, ImageDraw, ImageFilter, _ = _pil()
    scalable, bitmap = _fonts()
    canvas = Image.new("L", (96, 96), 0)
    draw = ImageDraw.Draw(canvas)
    text = str(digit)
    if scalable is not None and (bitmap is None or rng.random() < 0.8):
        stroke = int(rng.integers(0, 4))
        draw.text((48, 48), text, fill=255, font=scalable, anchor="mm", stroke_width=stroke, stroke_fill=255)
    else:
        # The bitmap font is 6x11 pixels: scale it up, then thicken a random amount.
        small = Image.new("L", (12, 16), 0)
        ImageDraw.Draw(small).text((3, 2), text, fill=255, font=bitmap)
        canvas.paste(small.resize((48, 64), Image.Resampling.BILINEAR), (24, 16))
        for _ in range(int(rng.integers(0, 3))):
            canvas = canvas.filter(ImageFilter.MaxFilter(3))
    return canvas


def _affine(image, rng):
    """Random rotation (+-20 deg), shear (+-0.35) and aspect (0.75-1.25) about the centre."""
    Image = _pil()[0]
    angle = math.radians(rng.uniform(-20, 20))
    shear = rng.uniform(-0.35, 0.35)
    aspect = rng.uniform(0.75, 1.25)
    # Forward map: rotate . shear . scale(aspect); PIL wants the inverse (output -> input).
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([aspect, 1.0])
    inverse = np.linalg.inv(forward)
    centre = np.array([image.width / 2, image.height / 2])
    offset = centre - inverse @ centre
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    return image.transform(image.size, Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR)


def _fit_to_mnist_box(image, rng):
    """Crop to the ink, scale the larger side to 14-20 px and centre by mass in 28x28."""
    Image = _pil()[0]
    ink = np.asarray(image, dtype=np.float32)
    rows, cols = np.nonzero(ink > 20)
    if rows.size == 0:  # cannot happen for a digit glyph, but never return garbage
        raise RuntimeError("digit rendering produced an empty glyph")
    crop = image.crop((cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    side = rng.uniform(14, DIGIT_BOX)
    scale = side / max(crop.width, crop.height)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    glyph = np.asarray(crop.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    glyph = np.clip(glyph * rng.uniform(0.85, 1.15), 0, 255)
    total = glyph.sum()
    ys, xs = np.indices(glyph.shape)
    centre_y, centre_x = (ys * glyph).sum() / total, (xs * glyph).sum() / total
    top = int(np.clip(round(DIGIT_SIZE / 2 - centre_y), 0, DIGIT_SIZE - glyph.shape[0]))
    left = int(np.clip(round(DIGIT_SIZE / 2 - centre_x), 0, DIGIT_SIZE - glyph.shape[1]))
    out = np.zeros((DIGIT_SIZE, DIGIT_SIZE), np.float32)
    out[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
    return out


def render_digits(count, seed=0, labels=None):
    """`count` random 28x28 digits: (images uint8 (count, 28, 28), labels int64 (count,)).

    Classes are balanced in expectation (uniform draws) unless `labels` is given.
    """
    count = _check_count(count)
    rng = _rng(seed)
    if labels is None:
        labels = rng.integers(0, 10, size=count)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (count,) or (count and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"labels must be {count} digits in 0..9")
    images = np.zeros((count, DIGIT_SIZE, DIGIT_SIZE), np.uint8)
    for index, digit in enumerate(labels):
        glyph = _fit_to_mnist_box(_affine(_draw_glyph(int(digit), rng), rng), rng)
        images[index] = np.round(glyph).astype(np.uint8)
    return images, labels


@dataclasses.dataclass(frozen=True)
class DigitCanvases:
    """images uint8 (N, S, S, 1); labels int64 (N,); positions int (N, 2): the (row, column) of
    the digit's 28x28 box's top-left corner, which lies fully inside the canvas."""

    images: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    digits: np.ndarray  # the 28x28 digits before placement, (N, 28, 28)


def digit_canvases(count, seed=0, canvas_size=60, clutter=0, clutter_size=8):
    """Translated (clutter=0) or cluttered digits on `canvas_size` x `canvas_size` canvases.

    Clutter follows Mnih et al. (2014): `clutter` random `clutter_size` patches cut from other
    random digits, pasted at random places; the digit goes on top (pixel-wise maximum).
    """
    count = _check_count(count)
    if not isinstance(canvas_size, int) or canvas_size < DIGIT_SIZE:
        raise ValueError(f"canvas_size must be an integer of at least {DIGIT_SIZE}; got {canvas_size!r}")
    if not isinstance(clutter, int) or clutter < 0:
        raise ValueError(f"clutter must be a non-negative number of fragments; got {clutter!r}")
    if not isinstance(clutter_size, int) or not 1 <= clutter_size <= DIGIT_SIZE:
        raise ValueError(f"clutter_size must be an integer in 1..{DIGIT_SIZE}; got {clutter_size!r}")
    rng = _rng(seed)
    digits, labels = render_digits(count, seed=rng.integers(2**31))
    # Clutter comes from a separate pool of digits, so a fragment never comes from the target.
    sources, _ = render_digits(min(max(count, 1), 512) if clutter else 0, seed=rng.integers(2**31))
    images = np.zeros((count, canvas_size, canvas_size), np.uint8)
    positions = rng.integers(0, canvas_size - DIGIT_SIZE + 1, size=(count, 2))
    for index in range(count):
        canvas = images[index]
        for _ in range(clutter):
            source = sources[rng.integers(len(sources))]
            # Cut where the source has ink: inside the central 20x20 box.
            top, left = rng.integers(4, 4 + DIGIT_BOX - clutter_size + 1, size=2)
            fragment = source[top : top + clutter_size, left : left + clutter_size]
            row, col = rng.integers(0, canvas_size - clutter_size + 1, size=2)
            window = canvas[row : row + clutter_size, col : col + clutter_size]
            np.maximum(window, fragment, out=window)
        row, col = positions[index]
        window = canvas[row : row + DIGIT_SIZE, col : col + DIGIT_SIZE]
        np.maximum(window, digits[index], out=window)
    return DigitCanvases(images[..., None], labels, positions, digits)


# Shapes.


def _texture(rng, size, base, contrast):
    """An RGB texture: a base colour, low-frequency blotches (partly shared by the three
    channels, so they read as light and shade rather than rainbow) and fine noise."""
    Image = _pil()[0]
    cells = int(rng.integers(3, 9))
    coarse = rng.normal(0, contrast, size=(cells, cells, 1)) + rng.normal(0, contrast / 2, size=(cells, cells, 3))
    coarse = (np.clip(coarse + 128, 0, 255)).astype(np.uint8)
    blotches = np.asarray(Image.fromarray(coarse, "RGB").resize((size, size), Image.Resampling.BICUBIC), np.float32)
    fine = rng.normal(0, 12, size=(size, size, 3))
    return np.clip(base + (blotches - 128) + fine, 0, 255)


def _polygon(kind, centre, radius, angle):
    cx, cy = centre
    if kind == "square":
        corners = [angle + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        return [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in corners]
    if kind == "triangle":
        corners = [angle + k * 2 * math.pi / 3 for k in range(3)]
        return [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in corners]
    if kind == "star":
        points = []
        for k in range(10):
            r = radius if k % 2 == 0 else radius * 0.45
            a = angle + k * math.pi / 5
            points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        return points
    if kind == "cross":
        arm = radius * 0.35
        outline = [(arm, radius), (arm, arm), (radius, arm), (radius, -arm), (arm, -arm), (arm, -radius),
                   (-arm, -radius), (-arm, -arm), (-radius, -arm), (-radius, arm), (-arm, arm), (-arm, radius)]
        cos, sin = math.cos(angle), math.sin(angle)
        return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in outline]
    raise ValueError(kind)


def _draw_shape(draw, kind, centre, radius, angle, fill):
    if kind == "circle":
        cx, cy = centre
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    else:
        draw.polygon(_polygon(kind, centre, radius, angle), fill=fill)


def _check_size(size, minimum=16):
    if not isinstance(size, int) or size < minimum:
        raise ValueError(f"size must be an integer of at least {minimum}; got {size!r}")
    return size


def _paint(rng, size, shapes):
    """Composites textured shapes onto a textured background.

    shapes: [(kind, centre, radius, angle, mask_value)]; returns (image uint8, mask uint8).
    """
    Image, ImageDraw, _, _ = _pil()
    background = rng.uniform(30, 225, size=3)
    image = _texture(rng, size, background, contrast=40.0)
    mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(mask)
    for kind, centre, radius, angle, value in shapes:
        stencil = Image.new("L", (size, size), 0)
        _draw_shape(ImageDraw.Draw(stencil), kind, centre, radius, angle, 255)
        inside = np.asarray(stencil)[..., None] > 0
        # A fill colour at least 60 levels (mean over channels) from the background's.
        colour = rng.uniform(20, 235, size=3)
        while np.abs(colour - background).mean() < 60:
            colour = rng.uniform(20, 235, size=3)
        image = np.where(inside, _texture(rng, size, colour, contrast=20.0), image)
        _draw_shape(mask_draw, kind, centre, radius, angle, value)
    return np.round(image).astype(np.uint8), np.asarray(mask, np.uint8)


def shape_segmentation(count, seed=0, size=64, max_shapes=4):
    """(images uint8 (N, size, size, 3), masks uint8 (N, size, size)) with classes
    `SHAPE_SEGMENTATION_CLASSES`; 1 to `max_shapes` shapes per image, later ones on top."""
    count = _check_count(count)
    size = _check_size(size)
    if not isinstance(max_shapes, int) or max_shapes < 1:
        raise ValueError(f"max_shapes must be a positive integer; got {max_shapes!r}")
    rng = _rng(seed)
    images = np.zeros((count, size, size, 3), np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    kinds = SHAPE_SEGMENTATION_CLASSES[1:]
    for index in range(count):
        shapes = []
        for _ in range(int(rng.integers(1, max_shapes + 1))):
            value = int(rng.integers(1, len(kinds) + 1))
            radius = rng.uniform(0.08, 0.22) * size
            centre = rng.uniform(radius, size - radius, size=2)
            shapes.append((kinds[value - 1], tuple(centre), radius, rng.uniform(0, 2 * math.pi), value))
        images[index], masks[index] = _paint(rng, size, shapes)
    return images, masks


def shape_classification(count, seed=0, size=64):
    """(images uint8 (N, size, size, 3), labels int64 (N,)): one shape of class
    `SHAPE_CLASSES[label]` per image, random size, place, rotation and textures."""
    count = _check_count(count)
    size = _check_size(size)
    rng = _rng(seed)
    labels = rng.integers(0, len(SHAPE_CLASSES), size=count)
    images = np.zeros((count, size, size, 3), np.uint8)
    for index, label in enumerate(labels):
        radius = rng.uniform(0.2, 0.42) * size
        centre = rng.uniform(radius, size - radius, size=2)
        shape = (SHAPE_CLASSES[label], tuple(centre), radius, rng.uniform(0, 2 * math.pi), 1)
        images[index], _ = _paint(rng, size, [shape])
    return images, labels.astype(np.int64)
