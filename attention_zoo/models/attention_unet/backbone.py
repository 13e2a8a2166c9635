"""Attention U-Net (Oktay et al., MIDL 2018) in 2-D: a U-Net encoder, or any zoo backbone,
and the attention-gated decoder.

Encoders:
- the U-Net's own (default): at each level a double 3x3 conv-BN-ReLU, 2x2 max-pooling
  between levels, widths base_filters * 2**level. The 2-D U-Net's base of 64 is the default;
  the official pancreas code divides 64 by `feature_scale=4`, i.e. `base_filters=16`.
  The level at stride 2**(s + 1) ends in an Identity named `stage{s}_output`, the zoo's
  convention (`stage0_output` at stride 2 ... `stage3_output` at 16 for depth 4).
- a zoo backbone by name (`encoder="cbam_resnet50"`): built with
  `attention_zoo.get(encoder, include_top=False, input_shape=...)` and nested as the layer
  "encoder", a model over the backbone's own layers (so its weights are the backbone's, and
  a `.weights.h5` saved from that backbone loads into it). The decoder taps its pyramid
  (P2..P5, strides 4..32) and its last stride-2 feature (the ResNet stem's final ReLU),
  and adds a full-resolution level without a skip.

Sizes are static: Keras' bilinear resize to a traced size fails on the TensorFlow backend
(Keras 3.14-3.15.1), and static sizes keep LiteRT export simple. Inputs must be multiples
of the total stride (2**depth, or 32 with a zoo encoder); `pad_to_multiple=True` pads inside
the model (zeros, split between both sides) and crops every output back.
"""

import dataclasses
import math

import keras

from attention_zoo.models.attention_unet.decoder import (
    UPSAMPLING_MODES,
    attention_decoder,
    double_conv,
    segmentation_heads,
)
from attention_zoo.models.common import model_inputs, pyramid_outputs

ENCODER_STRIDE = 32  # a zoo backbone's deepest pyramid level, P5


@dataclasses.dataclass(frozen=True)
class AttentionUNetSpec:
    """The architecture of one Attention U-Net variant; every field is a `get` option.

    depth: down-sampling steps of the U-Net encoder (its total stride is 2**depth).
    base_filters: width of the first U-Net level; level l has base_filters * 2**l.
    decoder_filters: decoder widths, deepest level first (default: the U-Net encoder's
        widths; (256, 128, 64, 32, 16) with a zoo encoder).
    upsampling: "bilinear" (official) or "transpose" (2x2 stride-2 transposed conv).
    attention_gates: False builds the plain U-Net the paper compares with.
    gate_reduction: gate width = skip channels // gate_reduction (official model: 1).
    sub_sample_factor: the gates' theta kernel and stride (2 in the paper).
    deep_supervision: output {"logits", "aux_stride1", "aux_stride2", ...}, see
        `decoder.segmentation_heads`.
    encoder: None for the U-Net encoder, or a registered zoo backbone name.
    encoder_options: overrides passed to `attention_zoo.get(encoder, ...)`.
    encoder_weights: a `.weights.h5` of the backbone built with include_top=False.
    encoder_stride2_layer: the backbone layer to tap at stride 2 (default: the last layer
        whose output has stride 2).
    pad_to_multiple: pad inputs to the total stride inside the model, crop outputs back.
    default_size: the square size used where input_shape leaves height or width None.
    """

    depth: int = 4
    base_filters: int = 64
    decoder_filters: tuple = None
    upsampling: str = "bilinear"
    attention_gates: bool = True
    gate_reduction: int = 1
    sub_sample_factor: int = 2
    deep_supervision: bool = False
    encoder: str = None
    encoder_options: dict = None
    encoder_weights: str = None
    encoder_stride2_layer: str = None
    pad_to_multiple: bool = False
    default_size: int = 256

    def __post_init__(self):
        for field in ("depth", "base_filters", "gate_reduction", "sub_sample_factor", "default_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive integer; got {value!r}")
        if self.upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}; got {self.upsampling!r}")
        if self.decoder_filters is not None and not (
            isinstance(self.decoder_filters, (tuple, list))
            and all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in self.decoder_filters)
        ):
            raise ValueError(f"decoder_filters must be a tuple of positive integers; got {self.decoder_filters!r}")
        if self.encoder_options is not None and not isinstance(self.encoder_options, dict):
            raise ValueError(f"encoder_options must be a dict of backbone options; got {self.encoder_options!r}")

    @property
    def total_stride(self):
        return ENCODER_STRIDE if self.encoder else 2**self.depth


def _static_input_shape(input_shape, spec, name):
    height, width, channels = input_shape
    height = spec.default_size if height is None else int(height)
    width = spec.default_size if width is None else int(width)
    multiple = spec.total_stride
    off = [size for size in (height, width) if size % multiple]
    if off and not spec.pad_to_multiple:
        reason = f"2**depth with depth={spec.depth}" if not spec.encoder else f"the total stride of '{spec.encoder}'"
        raise ValueError(
            f"{name}: input size {height}x{width} is not a multiple of {multiple} ({reason}). "
            f"Use a size divisible by {multiple}, or pad_to_multiple=True to pad inside the model "
            "and crop the outputs back."
        )
    return (height, width, channels)


def _padding(height, width, multiple):
    """((top, bottom), (left, right)) up to the next multiple, split between both sides."""
    pads = []
    for size in (height, width):
        total = math.ceil(size / multiple) * multiple - size
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _unet_encoder(x, spec):
    """{level: features} for levels 0 .. depth; the last is the bottleneck."""
    features = {}
    for level in range(spec.depth + 1):
        if level:
            x = keras.layers.MaxPooling2D(2, name=f"encoder{level}_pool")(x)
        x = double_conv(x, spec.base_filters * 2**level, f"encoder{level}")
        if level:
            x = keras.layers.Identity(name=f"stage{level - 1}_output")(x)
        features[level] = x
    return features


def _first_output(layer):
    return keras.tree.flatten(layer.output)[0]


def _spatial_size(layer):
    """(height, width) of a layer's first output; None for non-images and shared layers."""
    try:
        shape = _first_output(layer).shape
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        return None
    return tuple(shape[1:3]) if len(shape) == 4 else None


def _stride2_layer(backbone, spec, height, width):
    if spec.encoder_stride2_layer is not None:
        try:
            return backbone.get_layer(spec.encoder_stride2_layer)
        except ValueError as error:
            raise ValueError(
                f"encoder '{spec.encoder}' has no layer '{spec.encoder_stride2_layer}' (encoder_stride2_layer)"
            ) from error
    target = (height // 2, width // 2)
    candidates = [layer for layer in backbone.layers if _spatial_size(layer) == target]
    if not candidates:
        raise ValueError(
            f"encoder '{spec.encoder}' has no feature map at stride 2; name one with encoder_stride2_layer"
        )
    return candidates[-1]


def _zoo_encoder(x, spec, input_shape):
    """{level: features} for levels 1 .. 5 from a registered backbone, nested as "encoder"."""
    from attention_zoo.registry import get  # the registry imports every family: import late

    backbone = get(
        spec.encoder,
        include_top=False,
        input_shape=input_shape,
        weights=spec.encoder_weights,
        **(spec.encoder_options or {}),
    )
    pyramid = pyramid_outputs(backbone)
    height, width = input_shape[:2]
    taps = {1: _first_output(_stride2_layer(backbone, spec, height, width))}
    taps.update({int(level[1]): tensor for level, tensor in pyramid.items()})
    for level, tensor in taps.items():
        if tuple(tensor.shape[1:3]) != (height // 2**level, width // 2**level):
            raise ValueError(
                f"encoder '{spec.encoder}': the level-{level} feature has shape {tuple(tensor.shape)}, "
                f"not stride {2**level} of the {height}x{width} input"
            )
    names = {level: f"stride{2**level}" for level in taps}
    encoder = keras.Model(
        backbone.input, {names[level]: tensor for level, tensor in taps.items()}, name="encoder"
    )
    outputs = encoder(x)
    return {level: outputs[names[level]] for level in taps}


def _decoder_widths(spec, deepest):
    if spec.decoder_filters is not None:
        filters = tuple(spec.decoder_filters)
    elif spec.encoder:
        filters = (256, 128, 64, 32, 16)
    else:
        filters = tuple(spec.base_filters * 2**level for level in range(deepest, -1, -1))
    if len(filters) != deepest + 1:
        raise ValueError(
            f"decoder_filters needs {deepest + 1} widths (levels at strides {2**deepest} .. 1, deepest first); "
            f"got {filters}"
        )
    return {deepest - index: width for index, width in enumerate(filters)}


_BUILD_OPTIONS = ("classifier_activation",)


def build_attention_unet(
    spec, *, num_classes, include_top, input_shape, pooling, name, classifier_activation=None, **overrides
):
    """A functional Attention U-Net for `spec`, with any `AttentionUNetSpec` field overridden."""
    fields = {field.name for field in dataclasses.fields(AttentionUNetSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {unknown}. Attention U-Net models take "
            f"{sorted(fields | set(_BUILD_OPTIONS))} besides weights, num_classes, include_top and input_shape."
        )
    spec = dataclasses.replace(spec, **overrides)
    if pooling is not None:
        raise ValueError(
            f"{name} is a segmentation model with per-pixel outputs: pooling must be None; got {pooling!r}"
        )
    if spec.deep_supervision and not include_top:
        raise ValueError(f"{name}: deep_supervision needs the classification heads (include_top=True)")
    if include_top and not (isinstance(num_classes, int) and num_classes > 0):
        raise ValueError(f"{name}: num_classes must be a positive integer; got {num_classes!r}")

    height, width, channels = _static_input_shape(input_shape, spec, name)
    multiple = spec.total_stride
    inputs, x = model_inputs((height, width, channels), name, min_size=1 if spec.pad_to_multiple else multiple)
    padding = _padding(height, width, multiple)
    padded = padding != ((0, 0), (0, 0))
    if padded:
        x = keras.layers.ZeroPadding2D(padding, name="pad_to_multiple")(x)
    padded_shape = (x.shape[1], x.shape[2], channels)

    features = _zoo_encoder(x, spec, padded_shape) if spec.encoder else _unet_encoder(x, spec)
    bottleneck_level = max(features)
    bottleneck = features.pop(bottleneck_level)
    decoded = attention_decoder(
        features,
        bottleneck,
        _decoder_widths(spec, bottleneck_level - 1),
        attention_gates=spec.attention_gates,
        gate_reduction=spec.gate_reduction,
        sub_sample_factor=spec.sub_sample_factor,
        upsampling=spec.upsampling,
    )
    if include_top:
        outputs = segmentation_heads(decoded, num_classes, spec.deep_supervision, classifier_activation)
    else:
        outputs = decoded[0]
    if padded:
        outputs = _crop(outputs, padding)
    return keras.Model(inputs, outputs, name=name)


def _crop(outputs, padding):
    if isinstance(outputs, dict):
        return {key: keras.layers.Cropping2D(padding, name=f"{key}_crop")(value) for key, value in outputs.items()}
    return keras.layers.Cropping2D(padding, name="crop")(outputs)


__all__ = ["AttentionUNetSpec", "build_attention_unet"]
