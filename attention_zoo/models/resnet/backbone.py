"""One generic ResNet / ResNeXt: every registered variant is a `ResNetSpec`.

Two layouts of published weights are covered:
- timm / torchvision ("timm"): stride on the 3x3, stem max-pool 3/2 with padding 1;
- the official Caffe SENet models ("official"): stride on the first 1x1 of SE-ResNets, stem
  max-pool 3/2 in ceil mode without padding (`stride_in_1x1=True, stem_pool="ceil"`).
"""

import dataclasses

import keras

from attention_zoo.layers import create_attention
from attention_zoo.models.common import classifier_head, model_inputs
from attention_zoo.models.resnet.blocks import BLOCKS, EXPANSION, conv_bn

STAGE_PLANES = (64, 128, 256, 512)


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """The architecture of one ResNet variant.

    block: "basic" or "bottleneck".
    layers: blocks per stage.
    cardinality, base_width: ResNeXt groups and width per group (1, 64 for ResNet).
    stem: "default" (7x7/2) or "deep" (three 3x3, the first /2; SENet-154).
    stem_pool: "padded" (timm) or "ceil" (Caffe ceil mode).
    stride_in_1x1: official SE-ResNet layout.
    down_kernel_size: kernel of strided projection shortcuts (3 in SENet-154).
    block_reduce_first: divides the first conv's width (2 in SENet-154).
    attention / attention_options: the gate on each block's residual branch, by factory name.
    attention_options_per_stage: four dicts updating attention_options per stage (ECA's kernels).
    stage_attention / stage_attention_at / stage_attention_options: a module after whole
        stages (BAM after stages 1, 2, 3).
    selective_kernel: options of SK units that replace the 3x3 convolutions.
    selective_kernel_per_stage: four dicts updating them per stage (official SKNet-101).
    drop_rate: dropout before the classifier.
    zero_init_last: zero gamma on each block's last BN (the block starts as identity).
    """

    block: str = "bottleneck"
    layers: tuple = (3, 4, 6, 3)
    cardinality: int = 1
    base_width: int = 64
    stem: str = "default"
    stem_width: int = 64
    stem_pool: str = "padded"
    stride_in_1x1: bool = False
    down_kernel_size: int = 1
    block_reduce_first: int = 1
    attention: str = None
    attention_options: dict = dataclasses.field(default_factory=dict)
    attention_options_per_stage: tuple = None
    stage_attention: str = None
    stage_attention_at: tuple = (1, 2, 3)
    stage_attention_options: dict = dataclasses.field(default_factory=dict)
    selective_kernel: dict = None
    selective_kernel_per_stage: tuple = None
    drop_rate: float = 0.0
    zero_init_last: bool = True

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}; got {self.block!r}")
        if len(self.layers) != 4:
            raise ValueError(f"layers must give the number of blocks of the 4 stages; got {self.layers!r}")
        if self.stem not in ("default", "deep"):
            raise ValueError(f"stem must be 'default' or 'deep'; got {self.stem!r}")
        if self.stem_pool not in ("padded", "ceil"):
            raise ValueError(f"stem_pool must be 'padded' or 'ceil'; got {self.stem_pool!r}")

    @property
    def num_features(self):
        return STAGE_PLANES[-1] * EXPANSION[self.block]


def _stem(x, spec):
    if spec.stem == "deep":
        x = conv_bn(x, spec.stem_width, 3, "stem_conv1", strides=2)
        x = conv_bn(x, spec.stem_width, 3, "stem_conv2")
        x = conv_bn(x, spec.stem_width * 2, 3, "stem_conv3")
    else:
        x = conv_bn(x, spec.stem_width, 7, "stem_conv1", strides=2)
    # The pool follows a ReLU, so zero padding never wins the max: it equals PyTorch's
    # -inf padding (timm) and ceil mode (Caffe: one extra row/column at the bottom/right).
    padding = 1 if spec.stem_pool == "padded" else ((0, 1), (0, 1))
    x = keras.layers.ZeroPadding2D(padding, name="stem_pool_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)


def _for_stage(options, per_stage, stage_index):
    if options is None:
        return None
    options = dict(options)
    if per_stage is not None:
        options.update(per_stage[stage_index])
    return options


def build_resnet_features(inputs, spec):
    """Applies stem and stages to `inputs`; returns the stride-32 feature map."""
    x = _stem(inputs, spec)
    block_fn = BLOCKS[spec.block]
    for stage_index, (planes, depth) in enumerate(zip(STAGE_PLANES, spec.layers)):
        stage = stage_index + 1
        stage_spec = dataclasses.replace(
            spec,
            attention_options=_for_stage(spec.attention_options, spec.attention_options_per_stage, stage_index),
            selective_kernel=_for_stage(spec.selective_kernel, spec.selective_kernel_per_stage, stage_index),
        )
        for block_index in range(depth):
            strides = 2 if block_index == 0 and stage > 1 else 1
            x = block_fn(x, planes, strides, stage_spec, f"layer{stage}_{block_index}")
        if spec.stage_attention is not None and stage in spec.stage_attention_at:
            layer = create_attention(
                spec.stage_attention,
                x.shape[-1],
                return_attention=True,
                name=f"{spec.stage_attention}{stage}",
                **spec.stage_attention_options,
            )
            x, _ = layer(x)
        x = keras.layers.Identity(name=f"stage{stage}_output")(x)
    return x


_BUILD_OPTIONS = ("classifier_activation",)


def build_resnet(spec, *, num_classes, include_top, input_shape, pooling, name, classifier_activation=None, **overrides):
    """A functional ResNet for `spec`, with any `ResNetSpec` field overridden by keyword."""
    fields = {field.name for field in dataclasses.fields(ResNetSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {unknown}. ResNet models take {sorted(fields | set(_BUILD_OPTIONS))} "
            "besides weights, num_classes, include_top, input_shape, pooling and features_only."
        )
    spec = dataclasses.replace(spec, **overrides)
    inputs, x = model_inputs(input_shape, name, min_size=32)
    features = build_resnet_features(x, spec)
    outputs = classifier_head(features, num_classes, include_top, pooling, spec.drop_rate, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


__all__ = ["ResNetSpec", "build_resnet", "build_resnet_features"]
