"""What a DCN spends per image, against the coarse model and the fine model on the whole image.

Counted from the layer shapes with the zoo's conventions (`attention_zoo.utils.counting`:
multiply-accumulates of convolutions and dense layers; ReLU, pooling, padding, gathers and
selects are free):

    dcn       = coarse layers on the image
              + top layers on the coarse map        (the coarse prediction)
              + saliency backward pass              (counted as the top layers' MACs again)
              + k x fine layers on one 14x14 patch
              + top layers on the mixed map
    coarse    = coarse layers + top layers          (`dcn_coarse`)
    fine_full = fine layers on the padded image + top layers  (`dcn_fine`)

The backward pass needs the gradient with respect to the coarse map only, not the weights:
through a convolution that is a transposed convolution with the forward's MACs, through a dense
layer a product with the transposed matrix (again the forward's MACs), and through ReLU and max
pooling a routing of values without multiplications. Hence "the top layers' MACs again".
"""

import keras

from attention_zoo.models.dynamic_capacity import blocks
from attention_zoo.utils.counting import conv_macs, dense_macs


def stack_macs(layers, input_shape):
    """MACs per example of `layers` applied in order to one (H, W, C) input; also the output shape."""
    shape = (1, *input_shape)
    total = 0
    for layer in layers:
        output_shape = tuple(layer.compute_output_shape(shape))
        if isinstance(layer, keras.layers.Conv2D):
            total += conv_macs(output_shape, layer.kernel_size, shape[-1], layer.filters, layer.groups)
        elif isinstance(layer, keras.layers.Dense):
            total += dense_macs(shape, layer.units)
        shape = output_shape
    return total, shape[1:]


def macs_report(model):
    """Per-image MACs of a `DynamicCapacityNetwork` and of the two baselines at its image size.

    Returns {"dcn", "coarse", "fine_full", "ratio" (dcn / fine_full), "dcn_breakdown": {...}}.
    """
    from attention_zoo.models.dynamic_capacity.network import DynamicCapacityNetwork

    if not isinstance(model, DynamicCapacityNetwork):
        raise TypeError(
            f"macs_report needs a DynamicCapacityNetwork (e.g. attention_zoo.get('dcn')); got {type(model).__name__}"
        )
    height, width, channels = model.image_shape
    coarse, grid = stack_macs(model.coarse.layers, (height, width, channels))
    top, _ = stack_macs(model.top.layers, grid)
    patch, patch_out = stack_macs(model.fine.layers, (blocks.PATCH_SIZE, blocks.PATCH_SIZE, channels))
    if tuple(patch_out[:2]) != (1, 1):
        raise AssertionError(f"fine layers map a patch to {patch_out}, not to one vector")
    padded = (height + sum(blocks.IMAGE_PADDING), width + sum(blocks.IMAGE_PADDING), channels)
    fine_dense, fine_grid = stack_macs(model.fine.layers, padded)
    if tuple(fine_grid) != tuple(grid):
        raise AssertionError(f"dense fine grid {fine_grid} differs from the coarse grid {grid}")
    breakdown = {
        "coarse_layers": coarse,
        "coarse_prediction": top,
        "saliency_backward": top,
        "fine_patches": model.num_patches * patch,
        "top_layers": top,
    }
    dcn = sum(breakdown.values())
    fine_full = fine_dense + top
    return {
        "dcn": dcn,
        "coarse": coarse + top,
        "fine_full": fine_full,
        "ratio": dcn / fine_full,
        "dcn_breakdown": breakdown,
    }
