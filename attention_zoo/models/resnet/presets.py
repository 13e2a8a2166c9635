"""Registered ResNet-family variants: each is a `ResNetSpec` and what the papers report.

Reference figures (parameters in PyTorch's convention, GMACs at 224x224 for the layout the
variant follows) come from the papers, their official code and timm; tests check the built
models against them.
"""

from attention_zoo import papers
from attention_zoo.models.resnet.backbone import ResNetSpec, build_resnet
from attention_zoo.registry import register_model

TIMM = "timm/torchvision: stride on the 3x3, stem max-pool padded by 1"
OFFICIAL_SENET = "official Caffe SENet: stride on the first 1x1, ceil-mode stem max-pool, SE width C // 16"
OFFICIAL_RESNEXT_SENET = "official Caffe SE-ResNeXt: stride on the grouped 3x3, ceil-mode stem max-pool, SE width C // 16"
OFFICIAL_CBAM = "official CBAM/BAM code (torchvision ResNet, stride on the 3x3): MLPs with bias"
ECA_CODE = "ECA-Net code (torchvision ResNet, stride on the 3x3), k = 3, 5, 5, 7 per stage"

BASIC = dict(block="basic", layers=(2, 2, 2, 2))
BASIC34 = dict(block="basic", layers=(3, 4, 6, 3))
R50, R101, R152 = ((3, 4, 6, 3), (3, 4, 23, 3), (3, 8, 36, 3))
RESNEXT_32X4D = dict(cardinality=32, base_width=4)

TIMM_SE = dict(rd_divisor=8)  # timm rounds SE widths to multiples of 8
LEGACY = dict(stem_pool="ceil")
CBAM_OFFICIAL = dict(mlp_bias=True, pool_order="max_mean", spatial_gamma_init="zeros")
ECA_KERNELS = ({"kernel_size": 3}, {"kernel_size": 5}, {"kernel_size": 5}, {"kernel_size": 7})
SK_BASIC = dict(split_input=True, reduction=8, rd_divisor=16)  # timm skresnet18/34
SK_BOTTLENECK = dict(split_input=True, reduction=16, rd_divisor=8)  # timm skresnet50
SKNET = dict(split_input=False, reduction=16, rd_divisor=32)  # d = max(C / 16, 32)


def _resnet(name, spec, **info):
    """Registers `name` as `spec` with its model info: each variant is one call."""

    def builder(**options):
        return build_resnet(spec, **options)

    builder.__name__ = name
    builder.__doc__ = f"{name}: {info['paper'].title} ({info['layout']})."
    register_model(family="resnet", min_input_size=32, **info)(builder)
    return builder


# Baselines (torchvision/timm parameter counts, timm GMACs).
resnet18 = _resnet("resnet18", ResNetSpec(**BASIC), paper=papers.RESNET, layout=TIMM, params=11_689_512, gmacs=1.82)
resnet34 = _resnet("resnet34", ResNetSpec(**BASIC34), paper=papers.RESNET, layout=TIMM, params=21_797_672, gmacs=3.67)
resnet50 = _resnet("resnet50", ResNetSpec(layers=R50), paper=papers.RESNET, layout=TIMM, params=25_557_032, gmacs=4.11)
resnet101 = _resnet("resnet101", ResNetSpec(layers=R101), paper=papers.RESNET, layout=TIMM, params=44_549_160, gmacs=7.83)
resnet152 = _resnet("resnet152", ResNetSpec(layers=R152), paper=papers.RESNET, layout=TIMM, params=60_192_808, gmacs=11.56)
resnext50_32x4d = _resnet(
    "resnext50_32x4d", ResNetSpec(**RESNEXT_32X4D), paper=papers.RESNEXT, layout=TIMM, params=25_028_904, gmacs=4.26
)

# SENet, timm layout.
SE = dict(attention="se", attention_options=TIMM_SE)
se_resnet18 = _resnet("se_resnet18", ResNetSpec(**BASIC, **SE), paper=papers.SENET, layout=TIMM)
se_resnet34 = _resnet("se_resnet34", ResNetSpec(**BASIC34, **SE), paper=papers.SENET, layout=TIMM)
se_resnet50 = _resnet(
    "se_resnet50",
    ResNetSpec(layers=R50, **SE),
    paper=papers.SENET,
    layout=TIMM,
    params=28_088_024,
    gmacs=4.13,
    reported={"imagenet_top1_error": 23.29, "imagenet_top5_error": 6.62, "source": "SENet paper, table 2"},
)
se_resnet101 = _resnet(
    "se_resnet101",
    ResNetSpec(layers=R101, **SE),
    paper=papers.SENET,
    layout=TIMM,
    params=49_326_872,
    reported={"imagenet_top1_error": 22.38, "imagenet_top5_error": 6.07, "source": "SENet paper, table 2"},
)
se_resnet152 = _resnet(
    "se_resnet152",
    ResNetSpec(layers=R152, **SE),
    paper=papers.SENET,
    layout=TIMM,
    params=66_821_848,
    reported={"imagenet_top1_error": 21.57, "imagenet_top5_error": 5.73, "source": "SENet paper, table 2"},
)
se_resnext50_32x4d = _resnet(
    "se_resnext50_32x4d",
    ResNetSpec(**RESNEXT_32X4D, **SE),
    paper=papers.SENET,
    layout=TIMM,
    params=27_559_896,
    gmacs=4.25,
    reported={"imagenet_top1_error": 21.10, "imagenet_top5_error": 5.49, "source": "SENet paper, table 2"},
)
se_resnext101_32x4d = _resnet(
    "se_resnext101_32x4d",
    ResNetSpec(layers=R101, **RESNEXT_32X4D, **SE),
    paper=papers.SENET,
    layout=TIMM,
    params=48_955_416,
    gmacs=8.00,
    reported={"imagenet_top1_error": 21.01, "imagenet_top5_error": 5.90, "source": "SENet paper, table 2"},
)
senet154 = _resnet(
    "senet154",
    ResNetSpec(
        layers=R152,
        cardinality=64,
        base_width=4,
        stem="deep",
        down_kernel_size=3,
        block_reduce_first=2,
        drop_rate=0.2,
        **SE,
    ),
    paper=papers.SENET,
    layout=TIMM + "; deep stem, 3x3 strided projections, first 1x1 halved",
    params=115_088_984,
    gmacs=20.7,
    reported={"imagenet_top1_error": 18.68, "imagenet_top5_error": 4.47, "source": "SENet paper, table 3 (224 crop)"},
)

# SENet, official Caffe layout (timm's legacy_* ports of the released weights).
LEGACY_SE = dict(attention="se", attention_options={"rd_divisor": 1}, **LEGACY)
legacy_se_resnet50 = _resnet(
    "legacy_se_resnet50",
    ResNetSpec(layers=R50, stride_in_1x1=True, **LEGACY_SE),
    paper=papers.SENET,
    layout=OFFICIAL_SENET,
    params=28_088_024,
    gmacs=3.87,
    reported={"imagenet_top1_error": 22.37, "imagenet_top5_error": 6.36, "source": "released SENet weights"},
)
legacy_se_resnet101 = _resnet(
    "legacy_se_resnet101",
    ResNetSpec(layers=R101, stride_in_1x1=True, **LEGACY_SE),
    paper=papers.SENET,
    layout=OFFICIAL_SENET,
    params=49_326_872,
    gmacs=7.60,
    reported={"imagenet_top1_error": 22.38, "imagenet_top5_error": 6.07, "source": "SENet paper, table 2"},
)
legacy_se_resnet152 = _resnet(
    "legacy_se_resnet152",
    ResNetSpec(layers=R152, stride_in_1x1=True, **LEGACY_SE),
    paper=papers.SENET,
    layout=OFFICIAL_SENET,
    params=66_821_848,
    gmacs=11.32,
    reported={"imagenet_top1_error": 21.57, "imagenet_top5_error": 5.73, "source": "SENet paper, table 2"},
)
legacy_se_resnext50_32x4d = _resnet(
    "legacy_se_resnext50_32x4d",
    ResNetSpec(**RESNEXT_32X4D, **LEGACY_SE),
    paper=papers.SENET,
    layout=OFFICIAL_RESNEXT_SENET,
    params=27_559_896,
    gmacs=4.25,
    reported={"imagenet_top1_error": 20.97, "imagenet_top5_error": 5.54, "source": "released SENet weights"},
)

# CBAM, official code layout.
CBAM = dict(attention="cbam", attention_options=CBAM_OFFICIAL)
cbam_resnet18 = _resnet("cbam_resnet18", ResNetSpec(**BASIC, **CBAM), paper=papers.CBAM, layout=OFFICIAL_CBAM)
cbam_resnet34 = _resnet("cbam_resnet34", ResNetSpec(**BASIC34, **CBAM), paper=papers.CBAM, layout=OFFICIAL_CBAM)
cbam_resnet50 = _resnet(
    "cbam_resnet50",
    ResNetSpec(layers=R50, **CBAM),
    paper=papers.CBAM,
    layout=OFFICIAL_CBAM,
    params=28_089_624,
    gmacs=4.12,
    reported={
        "imagenet_top1_error": 22.66,
        "imagenet_top5_error": 6.31,
        "source": "CBAM paper, table 4; official checkpoint 77.622 / 93.948 accuracy",
    },
    notes="The paper's 3.864 GFLOPs count the stride on the 1x1; the official code strides the 3x3 "
    "(ResNet-50 4.11 GMACs plus CBAM's).",
)
cbam_resnet101 = _resnet(
    "cbam_resnet101",
    ResNetSpec(layers=R101, **CBAM),
    paper=papers.CBAM,
    layout=OFFICIAL_CBAM,
    reported={"imagenet_top1_error": 21.51, "imagenet_top5_error": 5.69, "source": "CBAM paper, table 4"},
)

# BAM after stages 1-3, official code layout (product combination, as the released weights).
BAM_AFTER_STAGES = dict(stage_attention="bam", stage_attention_at=(1, 2, 3))
bam_resnet50 = _resnet(
    "bam_resnet50",
    ResNetSpec(layers=R50, **BAM_AFTER_STAGES),
    paper=papers.BAM,
    layout=OFFICIAL_CBAM,
    params=25_915_099,
    reported={"imagenet_top1_accuracy": 76.860, "imagenet_top5_accuracy": 93.416, "source": "official checkpoint"},
)
bam_resnet101 = _resnet("bam_resnet101", ResNetSpec(layers=R101, **BAM_AFTER_STAGES), paper=papers.BAM, layout=OFFICIAL_CBAM)

# ECA.
ECA = dict(attention="eca", attention_options_per_stage=ECA_KERNELS)
eca_resnet50 = _resnet(
    "eca_resnet50",
    ResNetSpec(layers=R50, **ECA),
    paper=papers.ECA,
    layout=ECA_CODE,
    params=25_557_112,
    gmacs=4.11,
    reported={"imagenet_top1_accuracy": 77.48, "imagenet_top5_accuracy": 93.68, "source": "ECA-Net paper"},
    notes="The paper's 3.86 GFLOPs count the stride on the 1x1; its code strides the 3x3.",
)
eca_resnet101 = _resnet("eca_resnet101", ResNetSpec(layers=R101, **ECA), paper=papers.ECA, layout=ECA_CODE)

# Selective Kernel: timm's skresnet18/34/50 and the paper's SKNets (SK-ResNeXt 32x4d).
sk_resnet18 = _resnet(
    "sk_resnet18", ResNetSpec(**BASIC, selective_kernel=SK_BASIC, zero_init_last=False), paper=papers.SKNET, layout=TIMM
)
sk_resnet34 = _resnet(
    "sk_resnet34", ResNetSpec(**BASIC34, selective_kernel=SK_BASIC, zero_init_last=False), paper=papers.SKNET, layout=TIMM
)
sk_resnet50 = _resnet(
    "sk_resnet50", ResNetSpec(layers=R50, selective_kernel=SK_BOTTLENECK, zero_init_last=False), paper=papers.SKNET, layout=TIMM
)
sknet50 = _resnet(
    "sknet50",
    ResNetSpec(**RESNEXT_32X4D, selective_kernel=SKNET),
    paper=papers.SKNET,
    layout="official SKNet = timm skresnext50_32x4d",
    params=27_479_784,
    gmacs=4.47,
    reported={"imagenet_top1_error": 20.79, "source": "SKNet paper, table 2"},
)
sknet101 = _resnet(
    "sknet101",
    ResNetSpec(
        layers=R101,
        **RESNEXT_32X4D,
        selective_kernel=SKNET,
        # The official sknet101.prototxt uses d = 16, not 32, in the second stage.
        selective_kernel_per_stage=({}, {"rd_channels": 16}, {}, {}),
    ),
    paper=papers.SKNET,
    layout="official SKNet (sknet101.prototxt: d = 32, 16, 32, 64)",
    params=48_686_760,
    gmacs=8.46,
    reported={"imagenet_top1_error": 20.19, "source": "SKNet paper, table 2"},
)
