"""Attention layers, written with keras.ops only, one file per idea.

Gates that keep their input's shape are also reachable by name through `create_attention`,
so any block can take any of them.
"""

from attention_zoo.layers.attention_gate import AttentionGate
from attention_zoo.layers.attention_pooling import HardAttentionPooling, LocalAttentionPooling, SoftAttentionPooling
from attention_zoo.layers.bam import BottleneckAttention
from attention_zoo.layers.base import AttentionLayer
from attention_zoo.layers.cbam import CBAM, ChannelAttention, SpatialAttention
from attention_zoo.layers.conv_bn import ConvBN
from attention_zoo.layers.danet import ChannelSelfAttention, PositionAttention
from attention_zoo.layers.eca import EfficientChannelAttention
from attention_zoo.layers.factory import create_attention, list_attention, register_attention
from attention_zoo.layers.glimpse import GlimpseSensor
from attention_zoo.layers.non_local import NonLocalBlock
from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.similarity import (
    AdditiveSimilarity,
    BilinearSimilarity,
    CosineSimilarity,
    DotSimilarity,
    MLPSimilarity,
    ScaledDotSimilarity,
    get_similarity,
)
from attention_zoo.layers.spatial_transformer import AffineSampler, SpatialTransformer
from attention_zoo.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "AdditiveSimilarity",
    "AttentionGate",
    "AttentionLayer",
    "BilinearSimilarity",
    "BottleneckAttention",
    "CBAM",
    "ChannelAttention",
    "ChannelSelfAttention",
    "ConvBN",
    "CosineSimilarity",
    "DotSimilarity",
    "EfficientChannelAttention",
    "GlimpseSensor",
    "HardAttentionPooling",
    "LocalAttentionPooling",
    "MLPSimilarity",
    "NonLocalBlock",
    "PositionAttention",
    "ScaledDotSimilarity",
    "SelectiveKernel",
    "SoftAttentionPooling",
    "SpatialAttention",
    "AffineSampler",
    "SpatialTransformer",
    "SqueezeExcite",
    "create_attention",
    "get_similarity",
    "list_attention",
    "register_attention",
]
