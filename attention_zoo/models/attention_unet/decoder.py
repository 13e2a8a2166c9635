"""The Attention U-Net decoder: gated skips, upsampling, double convolutions, heads.

It follows the official pancreas model (`unet_CT_single_att_dsv_3D`, here in 2-D):
- the deepest gate is gated by `gating`, a 1x1 conv-BN-ReLU of the bottleneck
  (`UnetGridGatingSignal3`); the gate at level l by the decoder output of level l + 1;
- each gated skip passes a 1x1 conv-BN-ReLU (`MultiAttentionBlock.combine_gates`);
- a decoder level upsamples the deeper features, concatenates [skip, upsampled] and applies
  two 3x3 conv-BN-ReLU (`UnetUp3_CT`); the highest-resolution skip is concatenated ungated;
- deep supervision: a 1x1 conv to the classes on every decoder level, upsampled bilinearly
  to full size (`UnetDsv3`), concatenated full-resolution first and fused by a 1x1 conv.

Levels are numbered by stride: level l lies at stride 2**l, level 0 at full resolution.
Convolutions keep their biases before BatchNorm, as the official code (and its parameter
counts) does.
"""

import keras

from attention_zoo.layers.attention_gate import AttentionGate
from attention_zoo.layers.conv_bn import pytorch_batchnorm

UPSAMPLING_MODES = ("bilinear", "transpose")


def conv_bn_relu(x, filters, kernel_size, prefix, suffix=""):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", name=f"{prefix}_conv{suffix}")(x)
    x = pytorch_batchnorm(f"{prefix}_bn{suffix}")(x)
    return keras.layers.ReLU(name=f"{prefix}_relu{suffix}")(x)


def double_conv(x, filters, prefix):
    """U-Net's block: two 3x3 conv-BN-ReLU (`UnetConv3` with 3x3x3 kernels, in 2-D)."""
    x = conv_bn_relu(x, filters, 3, prefix, "1")
    return conv_bn_relu(x, filters, 3, prefix, "2")


def _upsample(x, filters, mode, level):
    if mode == "transpose":
        # kernel = stride = 2 without padding: exactly 2x and the same geometry as PyTorch.
        return keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"decoder{level}_upsample")(x)
    return keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{level}_upsample")(x)


def attention_decoder(
    skips,
    bottleneck,
    widths,
    *,
    attention_gates=True,
    gate_reduction=1,
    sub_sample_factor=2,
    upsampling="bilinear",
):
    """Decodes `bottleneck` (level L) back to level 0 through the `skips`.

    Args:
        skips: {level: features} for levels below L; a level without a skip (the full
            resolution behind a strided stem) upsamples and convolves only.
        bottleneck: the deepest features, at level L = max(skips) + 1 or deeper.
        widths: {level: decoder channels} for levels 0 .. L - 1.
        attention_gates: False gives the plain U-Net baseline of the paper.
        gate_reduction: gate width = skip channels // gate_reduction (the official
            pancreas model uses 1; the gate layer's own default is 2).
        sub_sample_factor: theta's kernel and stride.
        upsampling: "bilinear" (the official code) or "transpose" (2x2 transposed conv).

    Returns: {level: decoder output} for levels L - 1 .. 0.
    """
    if upsampling not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}; got {upsampling!r}")
    deepest = max(widths)
    gated = sorted(skips)[1:] if attention_gates else []  # the highest-resolution skip stays ungated
    gating = conv_bn_relu(bottleneck, 2 * widths[deepest], 1, "gating") if gated else None
    deeper, outputs = bottleneck, {}
    for level in range(deepest, -1, -1):
        skip = skips.get(level)
        if skip is not None and level in gated:
            signal = gating if level == deepest else deeper
            channels = skip.shape[-1]
            gate = AttentionGate(
                channels,
                gating_channels=signal.shape[-1],
                inter_channels=max(1, channels // gate_reduction),
                sub_sample_factor=sub_sample_factor,
                return_attention=True,
                name=f"attention_gate{level}",
            )
            skip, _ = gate([skip, signal])
            skip = conv_bn_relu(skip, channels, 1, f"gate{level}_combine")
        x = _upsample(deeper, widths[level], upsampling, level)
        if skip is not None:
            x = keras.layers.Concatenate(name=f"decoder{level}_concat")([skip, x])
        deeper = outputs[level] = double_conv(x, widths[level], f"decoder{level}")
    return outputs


def segmentation_heads(decoded, num_classes, deep_supervision, classifier_activation=None):
    """Per-pixel logits at full resolution; with deep supervision a dict of the fused logits
    and the auxiliary prediction of every decoder level.

    Deep supervision (the official `*_dsv` models): a 1x1 conv to `num_classes` on each
    decoder level l, upsampled bilinearly by 2**l to full size -> "aux_stride{2**l}";
    "logits" = 1x1 conv of their concatenation (full resolution first). The official code
    trains on "logits" only; the aux outputs are there for auxiliary losses.
    """

    def activate(x, name):
        if classifier_activation is None:
            return x
        return keras.layers.Activation(classifier_activation, name=f"{name}_activation")(x)

    if not deep_supervision:
        logits = keras.layers.Conv2D(num_classes, 1, name="logits")(decoded[0])
        return activate(logits, "logits")
    aux = {}
    for level in sorted(decoded):
        head = keras.layers.Conv2D(num_classes, 1, name=f"dsv{level}_conv")(decoded[level])
        if level:
            head = keras.layers.UpSampling2D(2**level, interpolation="bilinear", name=f"dsv{level}_upsample")(head)
        aux[f"aux_stride{2**level}"] = head
    fused = keras.layers.Concatenate(name="dsv_concat")(list(aux.values()))
    outputs = {"logits": activate(keras.layers.Conv2D(num_classes, 1, name="logits")(fused), "logits")}
    outputs.update({key: activate(value, key) for key, value in aux.items()})
    return outputs
