"""The Residual Attention Network family (Wang et al., CVPR 2017): one generic builder,
variants registered as data in `presets`."""

from attention_zoo.models.residual_attention import presets
from attention_zoo.models.residual_attention.backbone import (
    ResidualAttentionSpec,
    build_residual_attention,
    build_residual_attention_features,
    minimum_input_size,
)
from attention_zoo.models.residual_attention.blocks import attention_module, preact_unit
from attention_zoo.models.residual_attention.layers import AttentionMask, CaffeMaxPool2D, ResizeLike

__all__ = [
    "AttentionMask",
    "CaffeMaxPool2D",
    "ResidualAttentionSpec",
    "ResizeLike",
    "attention_module",
    "build_residual_attention",
    "build_residual_attention_features",
    "minimum_input_size",
    "preact_unit",
    "presets",
]
