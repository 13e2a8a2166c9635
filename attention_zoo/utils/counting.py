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
        # Costed at the size it is called with, which may differ from the size it was built at.
        return count_macs(layer, input_shape=input_shape[1:] if len(layer.inputs) == 1 else None)
    return 0


def _first_shape(structure):
    tensors = [t for t in keras.tree.flatten(structure) if isinstance(t, keras.KerasTensor)]
    return tuple(tensors[0].shape)


def _calls(model):
    """(layer, first input shape, first output shape) of every layer call in the model."""
    for layer in model.layers:
        for node in layer._inbound_nodes:
            if node.input_tensors:
                yield layer, _first_shape(node.input_tensors), _first_shape(node.outputs)


def _calls_at(model, input_shape):
    """The same calls with their shapes recomputed for inputs of `input_shape`, from each
    layer's output spec. A clone of the model would build every variable again: se_resnet101
    is costed at 224 in 0.1 s this way, in 7 s through a clone."""
    calls = []

    def recording(layer):
        def output_spec(*args, **kwargs):
            outputs = layer.compute_output_spec(*args, **kwargs)
            calls.append((layer, _first_shape((args, kwargs)), _first_shape(outputs)))
            return outputs

        return output_spec

    inputs = keras.KerasTensor((None, *input_shape))
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            inputs = recording(layer)(inputs)
    else:
        # Keras's own graph walk (what `model.compute_output_spec` runs) with a recording step.
        model._run_through_graph(inputs, operation_fn=recording)
    return calls


def count_macs(model, input_shape=None):
    """MACs per example of a functional model's convolutions and dense layers.

    With `input_shape` (H, W, C), the layers' shapes are recomputed at that size first, so a
    model made with flexible spatial dimensions can be costed at, e.g., 224x224. That needs a
    model with a single input.
    """
    if hasattr(model, "count_macs"):  # subclassed models (DCN) have no graph to walk
        return int(model.count_macs(input_shape))
    if input_shape is not None and not isinstance(model, keras.Sequential) and len(model.inputs) != 1:
        raise ValueError(
            f"count_macs(input_shape=...) costs a model with one input; '{model.name}' has "
            f"{len(model.inputs)}. Build it at the size to cost and call count_macs(model)."
        )
    calls = _calls(model) if input_shape is None else _calls_at(model, tuple(input_shape))
    total = 0
    for layer, in_shape, out_shape in calls:
        total += _layer_macs(layer, _static(in_shape, layer), _static(out_shape, layer))
    return total
