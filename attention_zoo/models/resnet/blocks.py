"""Residual blocks of the generic ResNet, in PyTorch's geometry so published weights load.

Every stride-2 convolution pads explicitly and runs "valid": Keras' "same" pads a stride-2
convolution on the bottom/right only, PyTorch on every side. Stride-1 "same" is symmetric.
Layer names follow timm's module paths: `layer1_0_conv1` holds timm's `layer1.0.conv1` as its
`conv` and `layer1.0.bn1` as its `bn` (see `ConvBN`, which folds the BN at inference).
"""

import keras

from attention_zoo.layers import SelectiveKernel, create_attention
from attention_zoo.layers.conv_bn import ConvBN


def conv_bn(x, filters, kernel_size, name, strides=1, groups=1, activation=True, zero_gamma=False):
    """Conv (no bias) + BN (+ ReLU), padded like PyTorch's `padding=(kernel_size - 1) // 2`."""
    padding = (kernel_size - 1) // 2
    if padding and strides > 1:
        x = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        mode = "valid"
    else:
        mode = "same" if padding else "valid"
    return ConvBN(
        filters,
        kernel_size,
        strides=strides,
        padding=mode,
        groups=groups,
        activation="relu" if activation else None,
        zero_gamma=zero_gamma,
        name=name,
    )(x)


def attend(x, attention, options, name):
    """Applies the named block attention (if any) and keeps its map in the graph."""
    layer = create_attention(attention, x.shape[-1], return_attention=True, name=name, **options)
    if layer is None:
        return x
    attended, _ = layer(x)
    return attended


def shortcut(x, filters, strides, kernel_size, prefix):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, kernel_size, f"{prefix}_downsample", strides=strides, activation=False)


def selective_kernel(x, filters, strides, groups, options, name):
    layer = SelectiveKernel(filters, strides=strides, groups=groups, return_attention=True, name=name, **options)
    output, _ = layer(x)
    return output


def basic_block(x, planes, strides, spec, prefix):
    """3x3 -> 3x3 (SK unit in place of the first with `spec.selective_kernel`), attention, add."""
    residual = shortcut(x, planes, strides, spec.down_kernel_size if strides > 1 else 1, prefix)
    first_planes = planes // spec.block_reduce_first
    if spec.selective_kernel is not None:
        y = selective_kernel(x, first_planes, strides, 1, spec.selective_kernel, f"{prefix}_conv1")
    else:
        y = conv_bn(x, first_planes, 3, f"{prefix}_conv1", strides=strides)
    y = conv_bn(y, planes, 3, f"{prefix}_conv2", activation=False, zero_gamma=spec.zero_init_last)
    y = attend(y, spec.attention, spec.attention_options, f"{prefix}_{spec.attention}")
    y = keras.layers.Add(name=f"{prefix}_add")([y, residual])
    return keras.layers.ReLU(name=f"{prefix}_out")(y)


def bottleneck_block(x, planes, strides, spec, prefix):
    """1x1 -> grouped 3x3 (or SK unit) -> 1x1 x4, attention on the branch, add.

    The stride sits on the 3x3 (timm, torchvision) or on the first 1x1 (the official Caffe
    SENet models, `spec.stride_in_1x1`).
    """
    out_channels = planes * 4
    residual = shortcut(x, out_channels, strides, spec.down_kernel_size if strides > 1 else 1, prefix)
    width = int(planes * spec.base_width / 64) * spec.cardinality
    first_planes = width // spec.block_reduce_first
    stride_1x1, stride_3x3 = (strides, 1) if spec.stride_in_1x1 else (1, strides)
    y = conv_bn(x, first_planes, 1, f"{prefix}_conv1", strides=stride_1x1)
    if spec.selective_kernel is not None:
        y = selective_kernel(y, width, stride_3x3, spec.cardinality, spec.selective_kernel, f"{prefix}_conv2")
    else:
        y = conv_bn(y, width, 3, f"{prefix}_conv2", strides=stride_3x3, groups=spec.cardinality)
    y = conv_bn(y, out_channels, 1, f"{prefix}_conv3", activation=False, zero_gamma=spec.zero_init_last)
    y = attend(y, spec.attention, spec.attention_options, f"{prefix}_{spec.attention}")
    y = keras.layers.Add(name=f"{prefix}_add")([y, residual])
    return keras.layers.ReLU(name=f"{prefix}_out")(y)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}
EXPANSION = {"basic": 1, "bottleneck": 4}
