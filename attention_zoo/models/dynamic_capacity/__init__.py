"""Dynamic Capacity Networks (Almahairi et al., ICML 2016): `dcn`, `dcn_coarse`, `dcn_fine`."""

from attention_zoo.models.dynamic_capacity import presets
from attention_zoo.models.dynamic_capacity.blocks import coarse_grid_size, min_image_size
from attention_zoo.models.dynamic_capacity.builders import build_baseline, build_dcn
from attention_zoo.models.dynamic_capacity.costs import macs_report
from attention_zoo.models.dynamic_capacity.network import DynamicCapacityNetwork
from attention_zoo.models.dynamic_capacity.presets import DCN_PAPER
from attention_zoo.models.dynamic_capacity.saliency import entropy_gradient, prediction_entropy, saliency_map

__all__ = [
    "DCN_PAPER",
    "DynamicCapacityNetwork",
    "build_baseline",
    "build_dcn",
    "coarse_grid_size",
    "entropy_gradient",
    "macs_report",
    "min_image_size",
    "prediction_entropy",
    "presets",
    "saliency_map",
]
