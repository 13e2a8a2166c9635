"""Pre-activation residual units and the Attention Module, as functional building blocks.

They follow the official Caffe deploy prototxts (fwang91/residual-attention-network,
imagenet_model/Attention-{56,92}-deploy.prototxt) layer for layer:

- a unit is BN-ReLU -> 1x1 (C/4) -> BN-ReLU -> 3x3 (C/4, stride here) -> BN-ReLU -> 1x1 (C), no
  biases, added to the identity, or to a strided 1x1 projection of the *activated* input when
  the width or the size changes (He et al.'s pre-activation unit);
- every tensor passed between units is the raw residual sum, each unit normalising its own
  input, so the mask branch pools un-normalised features.

Layer names map onto the prototxt's (`AttentionA_1` is `stage1_module1`): `{module}_pre` is
`trunk/res1` (the p units that trunk and mask share), `{module}_trunk_{i}` `trunk/res{i + 1}`,
`{module}_pool{l}` and `{module}_down{l}` `mask/down_sample/pool{l}_3x3_s2` and `res{l}_1`,
`{module}_bottom` the second unit at the smallest scale, `{module}_skip{l}` `mask/skip/res{l}`,
`{module}_upsample{l}` `mask/up_sample/interp_{l}`, `{module}_up{l}` `mask/up_sample/res{l}_1`,
`{module}_attention` the mask head (`mask/linear_1`, `mask/linear_2`) with the fusion, and
`{module}_post` the unit after it.
"""

import keras

from attention_zoo.layers.conv_bn import pytorch_batchnorm
from attention_zoo.models.residual_attention.layers import (
    AttentionMask,
    CaffeMaxPool2D,
    ResizeLike,
)


def batchnorm(x, name):
    return pytorch_batchnorm(name)(x)


def bn_relu(x, name):
    return keras.layers.ReLU(name=f"{name}_relu")(batchnorm(x, name))


def conv(x, filters, kernel_size, name, strides=1):
    """Conv2D without bias, padded symmetrically like Caffe's `pad: (k - 1) / 2`."""
    padding = (kernel_size - 1) // 2
    if padding and strides > 1:
        # Keras' "same" pads a strided convolution on the bottom/right only.
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        mode = "valid"
    else:
        mode = "same" if padding else "valid"
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=mode, use_bias=False, name=name)(x)


def preact_unit(x, filters, name, strides=1):
    """Pre-activation bottleneck unit with width `filters // 4`; returns the residual sum."""
    width = filters // 4
    activated = bn_relu(x, f"{name}_bn1")
    if strides == 1 and x.shape[-1] == filters:
        shortcut = x
    else:
        shortcut = conv(activated, filters, 1, f"{name}_shortcut", strides=strides)
    y = conv(activated, width, 1, f"{name}_conv1")
    y = conv(bn_relu(y, f"{name}_bn2"), width, 3, f"{name}_conv2", strides=strides)
    y = conv(bn_relu(y, f"{name}_bn3"), filters, 1, f"{name}_conv3")
    return keras.layers.Add(name=f"{name}_add")([shortcut, y])


def preact_units(x, filters, count, name):
    """`count` units of width `filters`, numbered `{name}_{i}` when there is more than one."""
    for index in range(count):
        x = preact_unit(x, filters, f"{name}_{index + 1}" if count > 1 else name)
    return x


def attention_module(
    x, name, skips, p=1, t=2, r=1, attention_type="mixed", align_corners=True, mask_epsilon=1e-5
):
    """One Attention Module: p units, then a trunk of t units and a mask branch, fused as
    (1 + M) * T, then p units.

    The mask branch starts from the output of the first p units (as the trunk does), max-pools
    `skips + 1` times (Caffe ceil mode, 3x3/2) with r units after each pooling, r more units at
    the smallest scale, then climbs back: at each intermediate scale the upsampled features are
    added to a skip unit applied to the features on the way down at that scale, followed by r
    units; a last bilinear upsampling reaches the trunk's size before the mask head.

    The official modules: stage 1 (56 px) 2 skips, down to 7 px; stage 2 (28 px) 1 skip;
    stage 3 (14 px) no skip; p=1, t=2, r=1.

    Returns the module's output; the mask is reachable through the `{name}_attention` layer
    (an `AttentionLayer` built with `return_attention=True`).
    """
    channels = x.shape[-1]
    x = preact_units(x, channels, p, f"{name}_pre")

    trunk = preact_units(x, channels, t, f"{name}_trunk")

    down = []
    y = x
    for level in range(1, skips + 2):
        y = CaffeMaxPool2D(name=f"{name}_pool{level}")(y)
        y = preact_units(y, channels, r, f"{name}_down{level}")
        down.append(y)
    # The smallest scale gets the r units of the way up too (2r in all).
    y = preact_units(y, channels, r, f"{name}_bottom")
    for level in range(skips, 0, -1):
        skip = preact_unit(down[level - 1], channels, f"{name}_skip{level}")
        y = ResizeLike(align_corners, name=f"{name}_upsample{level + 1}")([y, skip])
        y = keras.layers.Add(name=f"{name}_merge{level}")([skip, y])
        y = preact_units(y, channels, r, f"{name}_up{level}")
    y = ResizeLike(align_corners, name=f"{name}_upsample1")([y, trunk])

    mask_layer = AttentionMask(
        channels, attention_type=attention_type, epsilon=mask_epsilon, return_attention=True, name=f"{name}_attention"
    )
    fused, _ = mask_layer([trunk, y])
    return preact_units(fused, channels, p, f"{name}_post")
