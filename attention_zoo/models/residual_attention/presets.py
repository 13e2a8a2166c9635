"""Registered Residual Attention Networks: each is a `ResidualAttentionSpec` and what the paper
reports.

ImageNet models follow the official Caffe deploy prototxts layer for layer; their parameter
counts (PyTorch convention) and MACs at 224 are those of the prototxts, computed from them:
Attention-56 31,810,728 and 6.271 G, Attention-92 52,466,344 and 10.534 G (the paper rounds
to 31.9 M / 6.2 G and 51.3 M / 10.4 G).

The CIFAR models follow the paper's section 4.1 (no CIFAR prototxt was released): three stages
at 32, 16 and 8 px with an equal number m of Attention Modules in each (p=1, t=2, r=1), and two
Residual Units added to every stage, so that the trunk has 36m + 20 weighted layers: m = 1 is
Attention-56, m = 2 Attention-92 (the ablation's m = 1..4 are Attention-56/92/128/164, and
Attention-236 is m = 6). The paper states no widths and no mask depth for CIFAR; the parameter
counts it reports fix them. Pre-activation ResNet-164's widths (3x3 stem of 16; stages of 64,
128 and 256 channels, bottlenecks a quarter of that; the baseline the paper sets Attention-92
against, 1.7 M) with the ImageNet modules' masks scaled to 32x32 (pooling down to 4x4 with 2, 1
and 0 skip connections at 32, 16 and 8 px) give, at 10 classes:

    Attention-56  1,030,362
    Attention-92  1,841,242   paper 1.9 M (-3.1 %)
    Attention-236 5,084,762   paper 5.1 M (-0.3 %; not registered)

The order of the units inside a stage is not given: here a unit that projects (and from stage 2
on halves the size) opens each stage and a second one closes it, after the modules; both before
the modules would have the same parameters and MACs. Other readings miss the reported counts
(Attention-92 / Attention-236): one unit per stage with 3 more at 8 px as on ImageNet 1,959,706
/ 5,203,226; masks with 1, 0, 0 skips 1,707,226 / 4,682,714; masks with a skip in every stage
2,236,378 / 6,270,170; stages of 32/64/128 or 128/256/512 channels 0.47 M / 7.30 M for
Attention-92; the ImageNet module counts (1, 2, 3) at these widths with 3 final units 2,451,226.
Attention-452 (p=2, t=4, r=3, 6 modules per stage; 8.6 M in the paper) would have 10,181,210
under the same rules; only a mask with r units instead of 2r at its smallest scale, which the
official r=1 prototxts contradict, comes near (8.51 M), so it is not registered.
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
    "paper, section 4.1: 3x3 stem 16; three stages of 64/128/256 at 32/16/8 px, each a projection unit, "
    "m Attention Modules (2, 1, 0 mask skips) and one more unit"
)
UPSAMPLING_NOTE = (
    "Masks are upsampled with align-corners bilinear interpolation, as the official Caffe Interp layer "
    "does (align_corners=False switches to keras.ops.image.resize, i.e. PyTorch's align_corners=False). "
    "Max pools are Caffe's ceil mode. The model is built for one input size (default {size}; sizes left "
    "None get it) because the masks are resized to static sizes; any size of at least {minimum} works, "
    "not only multiples of 32."
)
CIFAR_NOTE = (
    " CIFAR strides are 1, 2, 4, 4 at the ends of the stages and of the final BN-ReLU, so they are named "
    "stage{{s}}_stride{{k}}_output instead of stage{{s}}_output: features_only (strides 4 to 32) does not "
    "apply. The paper (section 4.1) fixes the depth (m Attention Modules in each of 3 stages plus two "
    "units per stage, 36m + 20 trunk layers) but not the widths, the mask depth or the order of the units "
    "inside a stage; ResNet-164's widths and the ImageNet masks scaled to 32x32 give {params} parameters "
    "and {mmacs} M MACs at 32x32 with 10 classes{reported} (see attention_zoo.models.residual_attention.presets)."
)

IMAGENET_56 = ResidualAttentionSpec(modules=(1, 1, 1))
IMAGENET_92 = ResidualAttentionSpec(modules=(1, 2, 3))
CIFAR = dict(
    stem="cifar",
    stem_channels=16,
    channels=(64, 128, 256, 256),
    post_units=1,
    final_units=0,
    final_stride=1,
    default_input_size=32,
)
# "Equal number of Attention Modules are stacked in each stage" (section 4.1), unlike ImageNet.
CIFAR_56 = ResidualAttentionSpec(modules=(1, 1, 1), **CIFAR)
CIFAR_92 = ResidualAttentionSpec(modules=(2, 2, 2), **CIFAR)


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
    notes=CIFAR_NOTE.format(params="1,030,362", mmacs="122.8", reported=""),
    layout=CIFAR_LAYOUT,
    params=1_030_362,
    gmacs=0.122_825_216,
)
attention92_cifar = _residual_attention(
    "attention92_cifar",
    CIFAR_92,
    notes=CIFAR_NOTE.format(
        params="1,841,242", mmacs="211.9", reported=", 3 % fewer than the 1.9 M the paper reports for its Attention-92"
    ),
    layout=CIFAR_LAYOUT,
    params=1_841_242,
    gmacs=0.211_913_216,
    reported={
        "cifar10_error": 4.99,
        "cifar100_error": 21.71,
        "params_millions": 1.9,
        "source": "paper, comparison with the state of the art on CIFAR-10/100 (Attention-92, 1.9 M parameters)",
    },
)
