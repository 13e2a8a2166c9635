"""Registered Residual Attention Networks: each is a `ResidualAttentionSpec` and what the paper
reports.

ImageNet models follow the official Caffe deploy prototxts layer for layer; their parameter
counts (PyTorch convention) and MACs at 224 are those of the prototxts, computed from them:
Attention-56 31,810,728 and 6.271 G, Attention-92 52,466,344 and 10.534 G (the paper rounds
to 31.9 M / 6.2 G and 51.3 M / 10.4 G).

The CIFAR models are not defined exactly anywhere: the paper gives their depth, 32x32 inputs,
stages at 32, 16 and 8 px and 1.9 M parameters for Attention-92, and no prototxt was released.
The layout here is the ImageNet network's with pre-activation ResNet-164's CIFAR widths (the
baseline the paper compares Attention-92 with): a 3x3 conv stem of 16 channels at stride 1,
attention stages of 64, 128 and 256 channels at 32, 16 and 8 px with 2, 1 and 0 mask skip
connections (the masks pool down to 4x4), and 3 final units of 256 channels at 8 px. That
gives 2,451,226 parameters for attention92_cifar (1,148,826 for attention56_cifar) at 10
classes: more than the paper's 1.9 M, which no layout of this depth with these widths matches
(the depth, 92 layers, fixes the number of units).
"""

from attention_zoo.models.residual_attention.backbone import (
    ResidualAttentionSpec,
    build_residual_attention,
    minimum_input_size,
)
from attention_zoo.registry import Paper, register_model

RESIDUAL_ATTENTION = Paper(
    title="Residual Attention Network for Image Classification",
    authors="Fei Wang, Mengqing Jiang, Chen Qian, Shuo Yang, Cheng Li, Honggang Zhang, Xiaogang Wang, Xiaoou Tang",
    venue="CVPR",
    year=2017,
    url="https://arxiv.org/abs/1704.06904",
    bibtex="""@inproceedings{wang2017residual,
  title={Residual Attention Network for Image Classification},
  author={Wang, Fei and Jiang, Mengqing and Qian, Chen and Yang, Shuo and Li, Cheng and Zhang, Honggang and Wang, Xiaogang and Tang, Xiaoou},
  booktitle={CVPR},
  pages={3156--3164},
  year={2017}
}""",
)

OFFICIAL = "official Caffe deploy prototxt (fwang91/residual-attention-network, imagenet_model/)"
CIFAR_LAYOUT = (
    "CIFAR layout of this zoo (the paper defines none): 3x3 stem 16, attention stages 64/128/256 at "
    "32/16/8 px, 3 final units of 256 at 8 px"
)
UPSAMPLING_NOTE = (
    "Masks are upsampled with align-corners bilinear interpolation, as the official Caffe Interp layer "
    "does (align_corners=False switches to keras.ops.image.resize, i.e. PyTorch's align_corners=False). "
    "Max pools are Caffe's ceil mode. The model is built for one input size (default {size}; sizes left "
    "None get it) because the masks are resized to static sizes; any size of at least {minimum} works, "
    "not only multiples of 32."
)
CIFAR_NOTE = (
    " CIFAR strides are 1, 2, 4, 4 at the ends of the four stages, so they are named "
    "stage{{s}}_stride{{k}}_output instead of stage{{s}}_output: features_only (strides 4 to 32) does not "
    "apply. The paper defines no exact CIFAR network; this layout has {params} parameters and "
    "{mmacs} M MACs at 32x32 with 10 classes{reported} (see attention_zoo.models.residual_attention.presets)."
)

IMAGENET_56 = ResidualAttentionSpec(modules=(1, 1, 1))
IMAGENET_92 = ResidualAttentionSpec(modules=(1, 2, 3))
CIFAR = dict(
    stem="cifar",
    stem_channels=16,
    channels=(64, 128, 256, 256),
    final_stride=1,
    default_input_size=32,
)
CIFAR_56 = ResidualAttentionSpec(modules=(1, 1, 1), **CIFAR)
CIFAR_92 = ResidualAttentionSpec(modules=(1, 2, 3), **CIFAR)


def _residual_attention(name, spec, notes="", **info):
    """Registers `name` as `spec` with its model info."""

    def builder(**options):
        return build_residual_attention(spec, **options)

    builder.__name__ = name
    builder.__doc__ = f"{name}: {RESIDUAL_ATTENTION.title} ({info['layout']})."
    notes = UPSAMPLING_NOTE.format(size=spec.default_input_size, minimum=minimum_input_size(spec)) + notes
    register_model(
        family="residual_attention",
        paper=RESIDUAL_ATTENTION,
        default_input_size=spec.default_input_size,
        min_input_size=minimum_input_size(spec),
        notes=notes,
        **info,
    )(builder)
    return builder


attention56 = _residual_attention(
    "attention56",
    IMAGENET_56,
    layout=OFFICIAL,
    params=31_810_728,
    gmacs=6.27,
    reported={
        "imagenet_top1_error": 21.76,
        "imagenet_top5_error": 5.9,
        "source": "paper and official README: single 224x224 crop",
    },
)
attention92 = _residual_attention(
    "attention92",
    IMAGENET_92,
    layout=OFFICIAL,
    params=52_466_344,
    gmacs=10.53,
    reported={
        "imagenet_top1_error": 19.5,
        "imagenet_top5_error": 4.8,
        "source": "paper and official README: single 320x320 crop (not 224)",
    },
)
attention56_cifar = _residual_attention(
    "attention56_cifar",
    CIFAR_56,
    notes=CIFAR_NOTE.format(params="1,148,826", mmacs="122.8", reported=""),
    layout=CIFAR_LAYOUT,
)
attention92_cifar = _residual_attention(
    "attention92_cifar",
    CIFAR_92,
    notes=CIFAR_NOTE.format(
        params="2,451,226", mmacs="209.8", reported=", more than the 1.9 M the paper reports for its Attention-92"
    ),
    layout=CIFAR_LAYOUT,
    reported={
        "cifar10_error": 4.99,
        "params_millions": 1.9,
        "source": "paper, for its own CIFAR layout (1.9 M parameters), not this zoo's",
    },
)
