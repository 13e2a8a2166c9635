"""Spatial Transformer Networks: ST-CNN for cluttered digits, its CNN baseline, and a
transformer front end for any zoo classifier."""

from attention_zoo.layers.spatial_transformer import SpatialTransformer, affine_grid, attention_theta, grid_sample
from attention_zoo.models.spatial_transformer import presets
from attention_zoo.models.spatial_transformer.presets import STN
from attention_zoo.models.spatial_transformer.stn import build_cluttered_cnn, build_stn_classifier, build_stn_cnn

__all__ = [
    "STN",
    "SpatialTransformer",
    "affine_grid",
    "attention_theta",
    "build_cluttered_cnn",
    "build_stn_classifier",
    "build_stn_cnn",
    "grid_sample",
    "presets",
]
