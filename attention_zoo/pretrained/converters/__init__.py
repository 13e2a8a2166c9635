"""Checkpoint converters: a source layout's state dict -> `ConvertedWeights` (Keras weight paths).

    converted = convert(state_dict)               # layout detected from the keys
    converted = convert(state_dict, "timm")       # or named: "timm", "official_cbam"
"""

from attention_zoo.pretrained.converters import official_cbam, timm
from attention_zoo.pretrained.converters.common import CONVERTER_VERSION, ConvertedWeights
from attention_zoo.pretrained.errors import WeightsMismatchError

CONVERTERS = {"timm": timm, "official_cbam": official_cbam}


def detect_layout(state_dict):
    """"official_cbam" for the official CBAM/BAM code's keys, "timm" for timm/torchvision keys."""
    if official_cbam.looks_like(state_dict):
        return "official_cbam"
    if timm.looks_like(state_dict):
        return "timm"
    sample = ", ".join(f"'{key}'" for key in sorted(state_dict)[:4])
    raise WeightsMismatchError(
        f"unrecognised checkpoint layout (first keys: {sample}). Supported: timm / torchvision ResNets "
        "(keys 'conv1.weight', 'layer1.0.conv1.weight', ...) and the official CBAM/BAM code."
    )


def convert(state_dict, layout=None):
    layout = layout or detect_layout(state_dict)
    if layout not in CONVERTERS:
        raise ValueError(f"unknown checkpoint layout {layout!r}; known: {sorted(CONVERTERS)}")
    return CONVERTERS[layout].convert(state_dict)


__all__ = ["CONVERTERS", "CONVERTER_VERSION", "ConvertedWeights", "convert", "detect_layout"]
