"""Registered Recurrent Attention Models: the paper's 60x60 (translated / cluttered MNIST)
and 28x28 MNIST configurations, with the errors it reports."""

import inspect

from attention_zoo.models.recurrent_attention.model import RecurrentAttentionModel
from attention_zoo.registry import Paper, register_model

RAM_PAPER = Paper(
    title="Recurrent Models of Visual Attention",
    authors="Volodymyr Mnih, Nicolas Heess, Alex Graves, Koray Kavukcuoglu",
    venue="NIPS",
    year=2014,
    url="https://arxiv.org/abs/1406.6247",
    bibtex="""@inproceedings{mnih2014ram,
  title={Recurrent Models of Visual Attention},
  author={Mnih, Volodymyr and Heess, Nicolas and Graves, Alex and Kavukcuoglu, Koray},
  booktitle={Advances in Neural Information Processing Systems (NIPS)},
  pages={2204--2212},
  year={2014}
}""",
)

LAYOUT = (
    "paper: glimpse net 128/128 -> 256, rectifier RNN core 256, Gaussian location policy (fixed std), "
    "learned baseline, REINFORCE hybrid loss"
)
NOTES = (
    "Locations are (x, y) in [-1, 1], (0, 0) the centre, (-1, -1) the top-left corner. "
    "Works at any image size (glimpses are relative); trained at one size. "
    "random_glimpses=True gives the paper's random-glimpses baseline. "
    "Location std 0.22 follows the public reproductions (the paper gives no value)."
)

# Options that `attention_zoo.get(name, **overrides)` accepts: the model's own arguments,
# less those the factory sets (classes, channels) or that only Keras' plumbing uses.
_FACTORY_ARGUMENTS = {"self", "num_classes", "input_channels", "kwargs"}
OPTIONS = tuple(
    name for name in inspect.signature(RecurrentAttentionModel.__init__).parameters if name not in _FACTORY_ARGUMENTS
)


def param_count(num_classes, input_channels, num_glimpses, patch_size, num_scales, random_glimpses=False, **_):
    """Parameters of a RAM with the paper's widths (128, 128, 256, 256): every Linear is W x + b."""
    glimpse_size = patch_size * patch_size * num_scales * input_channels
    total = (glimpse_size + 1) * 128 + (2 + 1) * 128  # h_g, h_l
    total += (128 + 1) * 256 * 2  # g = Linear(h_g) + Linear(h_l)
    total += (256 + 1) * 256 * 2  # h_t = Linear(h_{t-1}) + Linear(g_t)
    if not random_glimpses and num_glimpses > 1:
        total += (256 + 1) * 2 + (256 + 1) * 1  # location mean, baseline
    return total + (256 + 1) * num_classes


def build_recurrent_attention(
    defaults, *, num_classes=10, include_top=True, input_shape=None, pooling=None, name="ram", **overrides
):
    """Builds a RAM from a preset's `defaults` and the factory's arguments.

    The model reads images of any size (its glimpses are in normalised coordinates), so
    unknown spatial sizes are built at the preset's size; only the channels are fixed.
    """
    unknown = sorted(set(overrides) - set(OPTIONS))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {unknown}; valid options: {', '.join(OPTIONS)}")
    if not include_top:
        raise ValueError(
            f"{name}: include_top=False (and features_only) are not available: RAM has no feature map or "
            "pyramid, and its classifier's decision is the reward that trains the location policy. "
            "`model.rollout(images)` exposes the glimpse locations."
        )
    size = defaults["input_size"]
    height, width, channels = input_shape if input_shape is not None else (None, None, 1)
    options = {key: value for key, value in defaults.items() if key != "input_size"}
    options.update(overrides)
    model = RecurrentAttentionModel(num_classes=num_classes, input_channels=channels, name=name, **options)
    model.build((None, height or size, width or size, channels))
    return model


def _ram(name, reported, **defaults):
    def builder(**options):
        return build_recurrent_attention(defaults, **options)

    builder.__name__ = name
    builder.__doc__ = f"{name}: {RAM_PAPER.title}, {defaults['num_glimpses']} glimpses of {defaults['patch_size']}px."
    register_model(
        family="recurrent_attention",
        paper=RAM_PAPER,
        layout=LAYOUT,
        params=param_count(num_classes=10, input_channels=1, **defaults),
        reported=reported,
        default_input_size=defaults["input_size"],
        min_input_size=1,
        input_channels=1,
        notes=NOTES,
    )(builder)
    return builder


# 60x60 translated and cluttered MNIST: 8 glimpses, 12x12 patches at 3 scales.
ram = _ram(
    "ram",
    reported={
        "translated_mnist60_error": 1.20,
        "cluttered_mnist60_error": 4.04,
        "cluttered_mnist60_conv2_baseline_error": 8.09,
        "cluttered_mnist60_random_glimpses_error": 14.4,
        "source": "Mnih et al. 2014, 60x60 translated and cluttered MNIST tables (8 glimpses, 12x12, 3 scales)",
    },
    input_size=60,
    num_glimpses=8,
    patch_size=12,
    num_scales=3,
)

# 28x28 MNIST: 7 glimpses, 8x8 patches, 1 scale.
ram_mnist28 = _ram(
    "ram_mnist28",
    reported={"mnist_error": 1.07, "source": "Mnih et al. 2014, 28x28 MNIST table (7 glimpses, 8x8, 1 scale)"},
    input_size=28,
    num_glimpses=7,
    patch_size=8,
    num_scales=1,
)
