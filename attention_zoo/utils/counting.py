"""Parameter and multiply-accumulate counts in the conventions the papers use.

Parameters: PyTorch's convention (trainable weights plus BatchNorm gamma/beta, without the
moving statistics), so that counts compare with the papers, timm and the official code.
MACs: multiply-accumulates of convolutions and fully connected layers at a given input size;
the SENet/SKNet/CBAM/Residual Attention papers call these "FLOPs".
"""

import math

import keras
import numpy as np

_BATCHNORM_STATISTICS = ("moving_mean", "moving_variance")


def count_params(model):
    """Parameters in PyTorch's convention: every weight except BatchNorm moving statistics."""
    total = 0
    for variable in model.weights:
        if variable.path.rsplit("/", 1)[-1] in _BATCHNORM_STATISTICS:
            continue
        total += int(np.prod(variable.shape))
    return total


def conv_macs(output_shape, kernel_size, in_channels, filters, groups=1):
    """MACs of a convolution producing `output_shape` (batch first, channels last)."""
    positions = math.prod(output_shape[1:-1])
    return positions * math.prod(kernel_size) * (in_channels // groups) * filters


def dense_macs(input_shape, units):
    return math.prod(input_shape[1:-1]) * input_shape[-1] * units


def _static(shape, layer):
    if any(dim is None for dim in shape[1:]):
        raise ValueError(
            f"count_macs needs static shapes; layer '{layer.name}' sees {tuple(shape)}. "
            "Pass input_shape=(H, W, C) to count at a given size."
        )
    return tuple(shape)


def _layer_macs(layer, input_shape, output_shape):
    if hasattr(layer, "count_macs"):
        return int(layer.count_macs(input_shape))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return conv_macs(output_shape, layer.kernel_size, 1, output_shape[-1])
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = conv_macs(output_shape, layer.kernel_size, 1, input_shape[-1] * layer.depth_multiplier)
        return depthwise + math.prod(output_shape[1:-1]) * input_shape[-1] * layer.depth_multiplier * layer.filters
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        return conv_macs(output_shape, layer.kernel_size, input_shape[-1], layer.filters, layer.groups)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return conv_macs(input_shape, layer.kernel_size, input_shape[-1], layer.filters)
    if isinstance(layer, keras.layers.Dense):
        return dense_macs(input_shape, layer.units)
    if isinstance(layer, keras.Model):
        return count_macs(layer)
    return 0


def _first_shape(structure):
    tensors = keras.tree.flatten(structure)
    return tuple(tensors[0].shape)


def count_macs(model, input_shape=None):
    """MACs per example of a functional model's convolutions and dense layers.

    With `input_shape` (H, W, C), the model is rebuilt at that size first, so a model made
    with flexible spatial dimensions can be costed at, e.g., 224x224.
    """
    if hasattr(model, "count_macs"):  # subclassed models (DCN) have no graph to walk
        return int(model.count_macs(input_shape))
    if input_shape is not None:
        inputs = keras.Input(tuple(input_shape))
        model = keras.models.clone_model(model, input_tensors=inputs)
    total = 0
    for layer in model.layers:
        for node in layer._inbound_nodes:
            if not node.input_tensors:
                continue
            in_shape = _static(_first_shape(node.input_tensors), layer)
            out_shape = _static(_first_shape(node.outputs), layer)
            total += _layer_macs(layer, in_shape, out_shape)
    return total
