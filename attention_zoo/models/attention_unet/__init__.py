"""Attention U-Net (Oktay et al., MIDL 2018): attention-gated skips in a 2-D U-Net, on the
U-Net's own encoder or on any zoo backbone."""

from attention_zoo.models.attention_unet import presets
from attention_zoo.models.attention_unet.backbone import AttentionUNetSpec, build_attention_unet
from attention_zoo.models.attention_unet.decoder import attention_decoder, segmentation_heads

__all__ = ["AttentionUNetSpec", "attention_decoder", "build_attention_unet", "presets", "segmentation_heads"]
