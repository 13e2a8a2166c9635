"""Registered Spatial Transformer models and what the paper reports.

Parameter counts and MACs are those of the layouts built here at the default 60x60x1 input
with 10 classes (tests derive them from the layer sizes); the reported errors are the
paper's (Table 1), measured with the paper's own, differently sized networks.
"""

from attention_zoo.models.spatial_transformer.stn import (
    DEFAULT_SIZE,
    STN_MIN_SIZE,
    CNN_MIN_SIZE,
    build_cluttered_cnn,
    build_stn_classifier,
    build_stn_cnn,
)
from attention_zoo.registry import Paper, register_model

STN = Paper(
    title="Spatial Transformer Networks",
    authors="Max Jaderberg, Karen Simonyan, Andrew Zisserman, Koray Kavukcuoglu",
    venue="NIPS",
    year=2015,
    url="https://arxiv.org/abs/1506.02025",
    bibtex="""@inproceedings{jaderberg2015stn,
  title={Spatial Transformer Networks},
  author={Jaderberg, Max and Simonyan, Karen and Zisserman, Andrew and Kavukcuoglu, Koray},
  booktitle={Advances in Neural Information Processing Systems (NIPS)},
  pages={2017--2025},
  year={2015}
}""",
)

CLUTTERED_LAYOUT = "common Keras cluttered-MNIST setup: conv 32@3x3 same, pool 2, conv 32@3x3 valid, pool 2, fc 256, fc 10"
TABLE1 = "STN paper, Table 1 (% error)"
_COMMON = dict(family="spatial_transformer", paper=STN, default_input_size=DEFAULT_SIZE, input_channels=1)


@register_model(
    **_COMMON,
    layout="affine ST (loc-net pool 2, conv 20@5x5, pool 2, conv 20@5x5, fc 50, fc 6) sampling 30x30, then "
    + CLUTTERED_LAYOUT,
    params=399_202,
    gmacs=0.003_352_476,
    min_input_size=STN_MIN_SIZE,
    reported={
        "cluttered_mnist_60_error": 1.7,
        "distorted_mnist_error": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2},
        "source": TABLE1 + ": ST-CNN (affine); distorted MNIST columns R, RTS, P, E",
    },
    notes="Reported errors come from the paper's networks, which differ in size from this common layout.",
)
def stn_cnn(**options):
    """ST-CNN for 60x60 cluttered digits: affine spatial transformer to 30x30, then a small CNN."""
    return build_stn_cnn(**options)


@register_model(
    **_COMMON,
    layout="plain CNN baseline on the whole image: " + CLUTTERED_LAYOUT,
    params=1_618_026,
    gmacs=0.009_870_336,
    min_input_size=CNN_MIN_SIZE,
    reported={
        "cluttered_mnist_60_error": 3.5,
        "distorted_mnist_error": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4},
        "source": TABLE1 + ": CNN; distorted MNIST columns R, RTS, P, E",
    },
    notes="The ST-CNN's classifier without the transformer, so it sees 60x60 and has a larger first "
    "dense layer. Reported errors come from the paper's CNN baseline.",
)
def cnn_cluttered(**options):
    """The ST-CNN's classifier without the transformer, on the whole 60x60 image."""
    return build_cluttered_cnn(**options)


@register_model(
    family="spatial_transformer",
    paper=STN,
    layout="SpatialTransformer (default localisation net) in front of any registered classifier",
    default_input_size=224,
    min_input_size=STN_MIN_SIZE,
    input_channels=3,
    notes="Needs classifier=<registered name>; input sizes left as None become the classifier's default. "
    "Parameter count depends on the classifier and on the input size (the localisation net flattens).",
)
def stn_classifier(**options):
    """Spatial transformer + a zoo classifier: get("stn_classifier", classifier="resnet18", ...)."""
    return build_stn_classifier(**options)
