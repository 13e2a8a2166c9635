"""One generic Residual Attention Network: every registered variant is a `ResidualAttentionSpec`.

ImageNet layout (official deploy prototxts): stem 7x7/2 conv 64 -> BN-ReLU -> 3x3/2 max pool
(Caffe ceil mode); three attention stages at strides 4, 8, 16 (56, 28, 14 px at 224), each a
projection unit (stride 2 from the second stage on) followed by its Attention Modules; a last
stage of 3 units at stride 32 (2048 channels); BN-ReLU -> global average pool -> FC.

CIFAR layout (paper, section 4.1; no prototxt was released, see `presets`): a 3x3 conv stem at
stride 1; three attention stages at 32, 16 and 8 px, each of a projection unit, m Attention
Modules and one more unit; no last stage: BN-ReLU -> global average pool -> FC.
"""

import dataclasses

import keras

from attention_zoo.layers.conv_bn import pytorch_batchnorm
from attention_zoo.models.common import classifier_head, model_inputs
from attention_zoo.models.residual_attention.blocks import (
    attention_module,
    bn_relu,
    conv,
    preact_unit,
    preact_units,
)
from attention_zoo.models.residual_attention.layers import ATTENTION_TYPES, CaffeMaxPool2D

STEMS = ("imagenet", "cifar")


@dataclasses.dataclass(frozen=True)
class ResidualAttentionSpec:
    """The architecture of one Residual Attention Network.

    modules: Attention Modules in each of the three attention stages ((1, 1, 1) Attention-56,
        (1, 2, 3) Attention-92).
    skips: skip connections of the mask branches per stage; a mask pools skips + 1 times.
    channels: output channels of the three attention stages and of the last stage; every unit's
        bottleneck is a quarter of its output.
    post_units: units closing each attention stage, after its modules (0 in the official
        ImageNet models; 1 in the paper's CIFAR networks, which add two units to every stage).
    final_units, final_stride: the last stage's units and the stride of its first one; 0 units
        (the CIFAR networks) leave the network without a last stage.
    stem: "imagenet" (7x7/2 conv, BN-ReLU, 3x3/2 max pool) or "cifar" (3x3 conv, stride 1).
    stem_channels: width of the stem convolution.
    p, t, r: units before and after each module, in its trunk, and per mask scale.
    attention_type: "mixed", "channel" or "spatial" (the paper's section 3.3).
    align_corners: bilinear upsampling of the masks like Caffe's Interp layer (True, the
        official models) or with half-pixel centres like `keras.ops.image.resize` (False).
    mask_epsilon: the attention types' normalisation epsilon.
    drop_rate: dropout before the classifier (none in the official models).
    default_input_size: the input size used when the user gives none (the model resizes masks
        to static sizes, so it is built for one input size).
    """

    modules: tuple = (1, 1, 1)
    skips: tuple = (2, 1, 0)
    channels: tuple = (256, 512, 1024, 2048)
    post_units: int = 0
    final_units: int = 3
    final_stride: int = 2
    stem: str = "imagenet"
    stem_channels: int = 64
    p: int = 1
    t: int = 2
    r: int = 1
    attention_type: str = "mixed"
    align_corners: bool = True
    mask_epsilon: float = 1e-5
    drop_rate: float = 0.0
    default_input_size: int = 224

    def __post_init__(self):
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}; got {self.stem!r}")
        if self.attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}; got {self.attention_type!r}")
        if len(self.modules) != 3 or len(self.skips) != 3:
            raise ValueError(
                f"modules and skips give one value per attention stage (3); got {self.modules!r} and {self.skips!r}"
            )
        if len(self.channels) != 4 or any(c % 4 for c in self.channels):
            raise ValueError(
                f"channels must be 4 widths divisible by 4 (bottleneck = width / 4); got {self.channels!r}"
            )
        if min(self.p, self.t, self.r) < 1 or min(self.modules) < 0 or min(self.skips) < 0:
            raise ValueError("p, t and r must be at least 1; modules and skips at least 0")
        if self.final_stride not in (1, 2) or self.final_units < 0 or self.post_units < 0:
            raise ValueError("final_stride must be 1 or 2; final_units and post_units at least 0")
        if not self.final_units and (self.final_stride, self.channels[3]) != (1, self.channels[2]):
            # Without a last stage its stride and width would silently go unused.
            raise ValueError(
                "with final_units=0 the network ends with the third stage: final_stride must be 1 and "
                f"channels[3] equal to channels[2]; got final_stride={self.final_stride}, channels={self.channels!r}"
            )

    @property
    def stage_strides(self):
        """Total stride at the output of the four stages."""
        stem = 4 if self.stem == "imagenet" else 1
        return (stem, stem * 2, stem * 4, stem * 4 * self.final_stride)

    @property
    def num_features(self):
        return self.channels[-1]


def _conv_out(size, stride):
    # A 3x3 conv with padding 1 and a 1x1 conv at the same stride give ceil(size / stride).
    return -(-size // stride)


def stage_sizes(spec, size):
    """Spatial size (one axis) at the input of the three attention stages, for input `size`."""
    if spec.stem == "imagenet":
        size = _conv_out(size, 2) // 2  # 7x7/2 conv, then Caffe's ceil-mode 3x3/2 pool
    sizes = [size]
    for _ in range(2):
        sizes.append(_conv_out(sizes[-1], 2))
    return sizes


def minimum_input_size(spec):
    """The smallest input side for which every mask branch can pool as often as it must.

    A Caffe ceil-mode 3x3/2 pool takes n >= 2 to floor(n / 2); a mask with `skips` skip
    connections pools skips + 1 times, so its stage must be at least 2 ** (skips + 1) pixels.
    Bilinear upsampling to the size of the map it is added to makes any size above that work,
    as in the official Caffe graph: inputs need not be multiples of 32.
    """
    size = 1
    while True:
        sizes = stage_sizes(spec, size)
        if all(
            n >= 2 ** (skips + 1) or modules == 0 for n, skips, modules in zip(sizes, spec.skips, spec.modules)
        ) and min(sizes) >= 1:
            return size
        size += 1


def _stem(x, spec):
    if spec.stem == "cifar":
        # Pre-activation ResNets on CIFAR: the first unit's BN-ReLU follows the stem conv.
        return conv(x, spec.stem_channels, 3, "stem_conv")
    x = conv(x, spec.stem_channels, 7, "stem_conv", strides=2)
    x = bn_relu(x, "stem_bn")
    return CaffeMaxPool2D(name="stem_pool")(x)


def _stage_output(x, spec, stage):
    """Names the end of each stage; `stage{s}_output` only where the stride is 2 ** (s + 1),
    the zoo's convention that `features_only` relies on."""
    stride = spec.stage_strides[stage - 1]
    name = f"stage{stage}_output" if stride == 2 ** (stage + 1) else f"stage{stage}_stride{stride}_output"
    return keras.layers.Identity(name=name)(x)


def build_residual_attention_features(inputs, spec):
    """Applies stem and stages to `inputs`; returns the final BN-ReLU features."""
    x = _stem(inputs, spec)
    for index, (modules, skips, channels) in enumerate(zip(spec.modules, spec.skips, spec.channels[:3])):
        stage = index + 1
        x = preact_unit(x, channels, f"stage{stage}_unit", strides=1 if stage == 1 else 2)
        for module in range(modules):
            x = attention_module(
                x,
                f"stage{stage}_module{module + 1}",
                skips,
                p=spec.p,
                t=spec.t,
                r=spec.r,
                attention_type=spec.attention_type,
                align_corners=spec.align_corners,
                mask_epsilon=spec.mask_epsilon,
            )
        x = preact_units(x, channels, spec.post_units, f"stage{stage}_post_unit")
        x = _stage_output(x, spec, stage)
    for unit in range(spec.final_units):
        strides = spec.final_stride if unit == 0 else 1
        x = preact_unit(x, spec.channels[3], f"stage4_unit{unit + 1}", strides=strides)
    x = pytorch_batchnorm("final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    return _stage_output(x, spec, 4)


_BUILD_OPTIONS = ("classifier_activation",)


def _static_input_shape(spec, input_shape, name):
    height, width, channels = input_shape
    height = spec.default_input_size if height is None else int(height)
    width = spec.default_input_size if width is None else int(width)
    minimum = minimum_input_size(spec)
    if min(height, width) < minimum:
        largest = max(spec.skips[i] for i in range(3) if spec.modules[i])
        raise ValueError(
            f"{name} needs inputs of at least {minimum}x{minimum} pixels: its mask branches max-pool "
            f"up to {largest + 1} times within their stage; got input_shape {(height, width, channels)}"
        )
    return height, width, channels


def build_residual_attention(
    spec, *, num_classes, include_top, input_shape, pooling, name, classifier_activation=None, **overrides
):
    """A functional Residual Attention Network for `spec`, any spec field overridden by keyword.

    The network resizes its masks to static sizes, so it is built for one input size:
    `input_shape` sizes left None become `spec.default_input_size`.
    """
    fields = {field.name for field in dataclasses.fields(ResidualAttentionSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {unknown}. Residual Attention models take "
            f"{sorted(fields | set(_BUILD_OPTIONS))} besides weights, num_classes, include_top, input_shape, "
            "pooling and features_only."
        )
    spec = dataclasses.replace(spec, **overrides)
    input_shape = _static_input_shape(spec, tuple(input_shape), name)
    inputs, x = model_inputs(input_shape, name, min_size=minimum_input_size(spec))
    features = build_residual_attention_features(x, spec)
    outputs = classifier_head(features, num_classes, include_top, pooling, spec.drop_rate, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


__all__ = [
    "ResidualAttentionSpec",
    "build_residual_attention",
    "build_residual_attention_features",
    "minimum_input_size",
    "stage_sizes",
]
