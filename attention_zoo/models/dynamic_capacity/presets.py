"""Registered Dynamic Capacity Network models: the DCN and the paper's two baselines.

Parameter counts follow from the layer specification (REFERENCE.md section 3, "DCN") for the
paper's 10 digit classes; the factory's default of 1000 classes adds 990 * 96 + 990 weights to
the classifier:
    coarse layers: 7*7*1*12 + 12 = 600, 3*3*12*24 + 24 = 2,616
    fine layers:   3*3*1*24 + 24 = 240, four times 3*3*24*24 + 24 = 20,832
    top layers:    4*4*24*96 + 96 = 36,960, 96*10 + 10 = 970
Reported errors: cluttered MNIST 100x100 (paper, table 1); REFERENCE.md marks them unverified.
"""

from attention_zoo.models.dynamic_capacity import blocks
from attention_zoo.models.dynamic_capacity.builders import build_baseline, build_dcn
from attention_zoo.registry import Paper, register_model

DCN_PAPER = Paper(
    title="Dynamic Capacity Networks",
    authors="Amjad Almahairi, Nicolas Ballas, Tim Cooijmans, Yin Zheng, Hugo Larochelle, Aaron Courville",
    venue="ICML",
    year=2016,
    url="https://arxiv.org/abs/1511.07838",
    bibtex="""@inproceedings{almahairi2016dcn,
  title={Dynamic Capacity Networks},
  author={Almahairi, Amjad and Ballas, Nicolas and Cooijmans, Tim and Zheng, Yin and Larochelle, Hugo and Courville, Aaron},
  booktitle={ICML},
  year={2016}
}""",
)

LAYOUT = (
    "paper's cluttered-digit setup: coarse conv 12@7x7/2, 24@3x3/2; fine five 24@3x3 convs with two 2x2 pools "
    "on 14x14 patches; top conv 96@4x4/2, global max pool, dense"
)
SOURCE = "DCN paper, table 1, cluttered MNIST 100x100 test error (%); unverified (REFERENCE.md)"
PARAMS_NOTE = "params counted for num_classes=10 (the digits); pass num_classes=10 to attention_zoo.get. "
COMMON = dict(
    family="dynamic_capacity",
    paper=DCN_PAPER,
    layout=LAYOUT,
    default_input_size=100,
    min_input_size=blocks.min_image_size(),
    input_channels=1,
)


@register_model(
    **COMMON,
    params=62_218,
    reported={"cluttered_mnist_100_error": 1.39, "source": SOURCE + "; DCN trained with hints"},
    notes=PARAMS_NOTE
    + "k=8 patches chosen by the entropy-gradient saliency; hint loss weight 0.01 by default (not recorded "
    "in REFERENCE.md; a public TensorFlow re-implementation uses it). Static image size "
    "(default 100x100). Attention via model.attention(images); per-image MACs via "
    "attention_zoo.models.dynamic_capacity.macs_report(model).",
)
def dcn(**options):
    """DCN: coarse layers everywhere, fine layers on the k most salient patches, shared top."""
    return build_dcn(**options)


@register_model(
    **COMMON,
    params=41_146,
    reported={"cluttered_mnist_100_error": 3.69, "source": SOURCE},
    notes=PARAMS_NOTE + "Baseline: the DCN's coarse layers and top layers, no fine layers.",
)
def dcn_coarse(**options):
    """Coarse model: the DCN's coarse layers on the whole image, then its top layers."""
    return build_baseline("coarse", **options)


@register_model(
    **COMMON,
    params=59_002,
    reported={"cluttered_mnist_100_error": 1.70, "source": SOURCE},
    notes=PARAMS_NOTE + "Baseline: the DCN's fine layers applied convolutionally to the whole (2, 1)-padded image, "
    "on the coarse grid, then its top layers.",
)
def dcn_fine(**options):
    """Fine model: the DCN's fine layers on the whole image, then its top layers."""
    return build_baseline("fine", **options)
