"""timm ResNet-family checkpoints -> the zoo's ResNets.

Covers timm's `ResNet` class (resnet*, resnext*, seresnet*, seresnext*, senet154,
skresnet*, skresnext*, and any of them with `block_args=dict(attn_layer="se" | "eca" |
"cbam")`), its legacy `SENet` class (legacy_seresnet*, legacy_seresnext*, legacy_senet154)
and torchvision's ResNets (same keys as timm's).

Key map (timm -> Keras weight path; `S.B` = stage and block):
  conv1 / bn1                          -> stem_conv1/{conv, bn}
  conv1.0, conv1.1 / .3, .4 / .6, bn1  -> stem_conv1, stem_conv2, stem_conv3 (deep stem)
  layer0.conv{n} / layer0.bn{n}        -> stem_conv{n} (legacy SENet)
  layerS.B.conv{n} / .bn{n}            -> layerS_B_conv{n}/{conv, bn}
  layerS.B.conv{n}.conv / .bn          -> layerS_B_conv{n}/{conv, bn} (SK blocks' ConvNormAct)
  layerS.B.conv{n}.paths.{i}.conv/.bn  -> layerS_B_conv{n}/path{i}/{conv, bn} (SK unit)
  layerS.B.conv{n}.attn.fc_reduce/bn/fc_select -> layerS_B_conv{n}/attention_{reduce, bn, select}
  layerS.B.downsample.0 / .1           -> layerS_B_downsample/{conv, bn}
  layerS.B.se.fc1 / .fc2 (se_module.*) -> layerS_B_se/{reduce, expand}
  layerS.B.se.conv (or .eca.conv)      -> layerS_B_eca/kernel (ECA-Net authors' code: `eca`)
  layerS.B.se.channel.fc1 / .fc2       -> layerS_B_cbam/channel/{reduce, expand}
  layerS.B.se.spatial.conv.conv / .bn  -> layerS_B_cbam/spatial/{conv, bn} (pooled maps: mean, max)
  fc / last_linear                     -> fc
"""

from attention_zoo.pretrained.converters.common import (
    Rule,
    bn_rule,
    conv1d_kernel,
    conv_kernel,
    convert_by_rules,
    dense_kernel,
    weight_bias_rule,
)

BLOCK = r"layer(?P<stage>\d)\.(?P<block>\d+)"
DST = "layer{stage}_{block}"

# Plain blocks, shortcuts and Selective Kernel units: shared with the official CBAM/BAM layout.
BLOCK_RULES = [
    Rule.make(rf"{BLOCK}\.conv(?P<n>\d)\.weight", DST + "_conv{n}/conv/kernel", conv_kernel),
    bn_rule(rf"{BLOCK}\.bn(?P<n>\d)", DST + "_conv{n}/bn"),
    Rule.make(rf"{BLOCK}\.conv(?P<n>\d)\.conv\.weight", DST + "_conv{n}/conv/kernel", conv_kernel),
    bn_rule(rf"{BLOCK}\.conv(?P<n>\d)\.bn", DST + "_conv{n}/bn"),
    Rule.make(
        rf"{BLOCK}\.conv(?P<n>\d)\.paths\.(?P<i>\d+)\.conv\.weight", DST + "_conv{n}/path{i}/conv/kernel", conv_kernel
    ),
    bn_rule(rf"{BLOCK}\.conv(?P<n>\d)\.paths\.(?P<i>\d+)\.bn", DST + "_conv{n}/path{i}/bn"),
    Rule.make(rf"{BLOCK}\.conv(?P<n>\d)\.attn\.fc_reduce\.weight", DST + "_conv{n}/attention_reduce/kernel", dense_kernel),
    bn_rule(rf"{BLOCK}\.conv(?P<n>\d)\.attn\.bn", DST + "_conv{n}/attention_bn"),
    Rule.make(rf"{BLOCK}\.conv(?P<n>\d)\.attn\.fc_select\.weight", DST + "_conv{n}/attention_select/kernel", dense_kernel),
    Rule.make(rf"{BLOCK}\.downsample\.0\.weight", DST + "_downsample/conv/kernel", conv_kernel),
    bn_rule(rf"{BLOCK}\.downsample\.1", DST + "_downsample/bn"),
]

HEAD_RULES = [weight_bias_rule(r"(?:fc|last_linear)", "fc", dense_kernel)]

ATTENTION_RULES = [
    weight_bias_rule(rf"{BLOCK}\.(?:se|se_module)\.fc1", DST + "_se/reduce", dense_kernel),
    weight_bias_rule(rf"{BLOCK}\.(?:se|se_module)\.fc2", DST + "_se/expand", dense_kernel),
    Rule.make(rf"{BLOCK}\.se\.conv\.weight", DST + "_eca/kernel", conv1d_kernel),
    # The ECA-Net authors' code (BangguWu/ECANet) names the module `eca`.
    Rule.make(rf"{BLOCK}\.eca\.conv\.weight", DST + "_eca/kernel", conv1d_kernel),
    weight_bias_rule(rf"{BLOCK}\.se\.channel\.fc1", DST + "_cbam/channel/reduce", dense_kernel),
    weight_bias_rule(rf"{BLOCK}\.se\.channel\.fc2", DST + "_cbam/channel/expand", dense_kernel),
    # timm's CbamModule concatenates the channel mean before the channel max.
    Rule.make(rf"{BLOCK}\.se\.spatial\.conv\.conv\.weight", DST + "_cbam/spatial/conv/kernel", conv_kernel, "mean_max"),
    bn_rule(rf"{BLOCK}\.se\.spatial\.conv\.bn", DST + "_cbam/spatial/bn"),
]


def _stem_rules(state_dict):
    if "conv1.0.weight" in state_dict:  # deep stem: Sequential(conv, bn, act, conv, bn, act, conv) + bn1
        return [
            Rule.make(r"conv1\.0\.weight", "stem_conv1/conv/kernel", conv_kernel),
            bn_rule(r"conv1\.1", "stem_conv1/bn"),
            Rule.make(r"conv1\.3\.weight", "stem_conv2/conv/kernel", conv_kernel),
            bn_rule(r"conv1\.4", "stem_conv2/bn"),
            Rule.make(r"conv1\.6\.weight", "stem_conv3/conv/kernel", conv_kernel),
            bn_rule(r"bn1", "stem_conv3/bn"),
        ]
    return [
        Rule.make(r"conv1\.weight", "stem_conv1/conv/kernel", conv_kernel),
        bn_rule(r"bn1", "stem_conv1/bn"),
        # legacy SENet: layer0 = conv1, bn1 (, conv2, bn2, conv3, bn3 for SENet-154)
        Rule.make(r"layer0\.conv(?P<n>\d)\.weight", "stem_conv{n}/conv/kernel", conv_kernel),
        bn_rule(r"layer0\.bn(?P<n>\d)", "stem_conv{n}/bn"),
    ]


def convert(state_dict):
    """{timm key: array} -> `ConvertedWeights` in the zoo's Keras layout."""
    rules = _stem_rules(state_dict) + BLOCK_RULES + ATTENTION_RULES + HEAD_RULES
    return convert_by_rules(state_dict, rules, "timm")


def looks_like(state_dict):
    return any(key in state_dict for key in ("conv1.weight", "conv1.0.weight", "layer0.conv1.weight"))


__all__ = ["BLOCK", "BLOCK_RULES", "DST", "HEAD_RULES", "convert", "looks_like"]
