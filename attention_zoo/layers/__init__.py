"""Attention layers, written with keras.ops only, one file per idea."""

from attention_zoo.layers.bam import BottleneckAttention
from attention_zoo.layers.base import AttentionLayer
from attention_zoo.layers.cbam import CBAM, ChannelAttention, SpatialAttention
from attention_zoo.layers.eca import EfficientChannelAttention
from attention_zoo.layers.factory import create_attention, list_attention, register_attention
from attention_zoo.layers.selective_kernel import SelectiveKernel
from attention_zoo.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "AttentionLayer",
    "BottleneckAttention",
    "CBAM",
    "ChannelAttention",
    "EfficientChannelAttention",
    "SelectiveKernel",
    "SpatialAttention",
    "SqueezeExcite",
    "create_attention",
    "list_attention",
    "register_attention",
]
