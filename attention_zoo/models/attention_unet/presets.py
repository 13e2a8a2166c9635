"""Registered Attention U-Net variants and what the paper reports.

The paper's pancreas model is 3-D (`unet_CT_single_att_dsv_3D`: feature_scale=4, i.e. base
width 16, deep supervision, one CT channel); this zoo's model is its 2-D counterpart, so its
parameter count differs from the paper's 6.40 M (U-Net: 5.88 M). The paper's setting in 2-D:
`get("attention_unet", base_filters=16, deep_supervision=True, input_shape=(H, W, 1),
num_classes=2)`.
"""

from attention_zoo.models.attention_unet.backbone import AttentionUNetSpec, build_attention_unet
from attention_zoo.registry import Paper, register_model

ATTENTION_UNET = Paper(
    title="Attention U-Net: Learning Where to Look for the Pancreas",
    authors="Ozan Oktay, Jo Schlemper, Loic Le Folgoc, Matthew Lee, Mattias Heinrich, Kazunari Misawa, "
    "Kensaku Mori, Steven McDonagh, Nils Y. Hammerla, Bernhard Kainz, Ben Glocker, Daniel Rueckert",
    venue="MIDL",
    year=2018,
    url="https://arxiv.org/abs/1804.03999",
    bibtex="""@inproceedings{oktay2018attention,
  title={Attention U-Net: Learning Where to Look for the Pancreas},
  author={Oktay, Ozan and Schlemper, Jo and Le Folgoc, Loic and Lee, Matthew and Heinrich, Mattias and
          Misawa, Kazunari and Mori, Kensaku and McDonagh, Steven and Hammerla, Nils Y. and Kainz, Bernhard and
          Glocker, Ben and Rueckert, Daniel},
  booktitle={Medical Imaging with Deep Learning (MIDL)},
  year={2018}
}""",
)

LAYOUT = (
    "official code (unet_CT_single_att_dsv_3D) in 2-D: gates with theta 2x2/2, gate width = skip width, "
    "1x1 conv-BN-ReLU after each gate and on the bottleneck's gating signal, bilinear upsampling"
)

REPORTED = {
    "pancreas_ct150_dice": 0.840,
    "unet_pancreas_ct150_dice": 0.814,
    "params_3d_model": 6_400_000,
    "unet_params_3d_model": 5_880_000,
    "source": "Oktay et al. 2018: 3-D models on CT-150 (120 train / 30 test); 6.40 M vs 5.88 M parameters",
}


def _attention_unet(name, spec, **info):
    def builder(**options):
        return build_attention_unet(spec, **options)

    builder.__name__ = name
    builder.__doc__ = f"{name}: {ATTENTION_UNET.title} (2-D)."
    register_model(family="attention_unet", paper=ATTENTION_UNET, layout=LAYOUT, reported=REPORTED, **info)(builder)
    return builder


attention_unet = _attention_unet(
    "attention_unet",
    AttentionUNetSpec(),
    params=35_266_987,
    default_input_size=AttentionUNetSpec.default_size,
    min_input_size=2 ** AttentionUNetSpec.depth,
    notes="2-D, base width 64 (the 2-D U-Net's; the official code's feature_scale=4 is base_filters=16), depth 4, "
    "static input size (default 256x256; sizes must be multiples of 2**depth or use pad_to_multiple=True). "
    "params count the model `get` builds by default, i.e. with num_classes=1000 output channels; pass "
    "num_classes for your segmentation task. encoder='<zoo backbone>' decodes any zoo backbone's features.",
)
