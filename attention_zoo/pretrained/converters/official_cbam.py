"""Checkpoints of the official CBAM / BAM code (Jongchan/attention-module) -> the zoo's ResNets.

Its ResNet is torchvision's (conv1, bn1, layerS.B.conv{n}/bn{n}, downsample.0/1, fc), so
blocks and shortcuts map like timm's. The attention modules differ:
  layerS.B.cbam.ChannelGate.mlp.1 / .mlp.3     (Linear, with bias) -> layerS_B_cbam/channel/{reduce, expand}
  layerS.B.cbam.SpatialGate.spatial.conv / .bn                       -> layerS_B_cbam/spatial/{conv, bn}
      (its ChannelPool concatenates max, then mean: the zoo's official `cbam_resnet50` order;
      a model built with pool_order="mean_max" gets the kernel's two input channels swapped)
  bamK.channel_att.gate_c.gate_c_fc_0 / gate_c_bn_1 / gate_c_fc_final -> bamK/channel_{reduce, bn, expand}
  bamK.spatial_att.gate_s.gate_s_conv_reduce0 / gate_s_bn_reduce0      -> bamK/spatial_reduce{, _bn}
  bamK.spatial_att.gate_s.gate_s_conv_di_{i} / gate_s_bn_di_{i}        -> bamK/spatial_{conv, bn}{i}
  bamK.spatial_att.gate_s.gate_s_conv_final                           -> bamK/spatial_out

The released files are training checkpoints ({'epoch', 'arch', 'state_dict', 'best_prec1',
'optimizer'}) of a DataParallel model: `checkpoints.read_state_dict` unwraps 'state_dict'
and strips the 'module.' prefix before this converter sees the keys.
"""

from attention_zoo.pretrained.converters.common import (
    Rule,
    bn_rule,
    conv_kernel,
    convert_by_rules,
    dense_kernel,
    weight_bias_rule,
)
from attention_zoo.pretrained.converters.timm import BLOCK, BLOCK_RULES, DST, HEAD_RULES

STEM_RULES = [
    Rule.make(r"conv1\.weight", "stem_conv1/conv/kernel", conv_kernel),
    bn_rule(r"bn1", "stem_conv1/bn"),
]

CBAM_RULES = [
    weight_bias_rule(rf"{BLOCK}\.cbam\.ChannelGate\.mlp\.1", DST + "_cbam/channel/reduce", dense_kernel),
    weight_bias_rule(rf"{BLOCK}\.cbam\.ChannelGate\.mlp\.3", DST + "_cbam/channel/expand", dense_kernel),
    Rule.make(
        rf"{BLOCK}\.cbam\.SpatialGate\.spatial\.conv\.weight", DST + "_cbam/spatial/conv/kernel", conv_kernel, "max_mean"
    ),
    bn_rule(rf"{BLOCK}\.cbam\.SpatialGate\.spatial\.bn", DST + "_cbam/spatial/bn"),
]

_CHANNEL = r"bam(?P<k>\d)\.channel_att\.gate_c\."
_SPATIAL = r"bam(?P<k>\d)\.spatial_att\.gate_s\."
BAM_RULES = [
    weight_bias_rule(_CHANNEL + r"gate_c_fc_0", "bam{k}/channel_reduce", dense_kernel),
    bn_rule(_CHANNEL + r"gate_c_bn_1", "bam{k}/channel_bn"),
    weight_bias_rule(_CHANNEL + r"gate_c_fc_final", "bam{k}/channel_expand", dense_kernel),
    weight_bias_rule(_SPATIAL + r"gate_s_conv_reduce0", "bam{k}/spatial_reduce", conv_kernel),
    bn_rule(_SPATIAL + r"gate_s_bn_reduce0", "bam{k}/spatial_reduce_bn"),
    weight_bias_rule(_SPATIAL + r"gate_s_conv_di_(?P<i>\d+)", "bam{k}/spatial_conv{i}", conv_kernel),
    bn_rule(_SPATIAL + r"gate_s_bn_di_(?P<i>\d+)", "bam{k}/spatial_bn{i}"),
    weight_bias_rule(_SPATIAL + r"gate_s_conv_final", "bam{k}/spatial_out", conv_kernel),
]


def convert(state_dict):
    """{official key: array} (without 'module.') -> `ConvertedWeights` in the zoo's Keras layout."""
    return convert_by_rules(state_dict, STEM_RULES + BLOCK_RULES + CBAM_RULES + BAM_RULES + HEAD_RULES, "official_cbam")


def looks_like(state_dict):
    return any(".cbam.ChannelGate." in key or key.startswith(("bam1.", "bam2.", "bam3.")) for key in state_dict)


__all__ = ["BAM_RULES", "CBAM_RULES", "convert", "looks_like"]
