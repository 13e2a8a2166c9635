"""Attention maps a person can look at.

    from attention_zoo import visualization
    maps = visualization.collect_attention(model, images)   # {"layer" or "layer/part": AttentionMap}
    visualization.plot_attention(model, image, path="attention.png")

or from a shell: `attention-zoo show cbam_resnet50 --image cat.jpg -o attention.png`.

`collect_attention` runs the model once and names its maps by layer with a `kind` that says
how to read them (channel_weights, spatial_map, path_weights, self_attention, mask, gate,
sampling_grid, glimpse_path, selected_patches); `plot_attention` picks the figures for the
kinds a model has, and the `plot_*` functions draw one kind each. Collection needs only Keras
and NumPy; the plots need matplotlib and reading image files needs Pillow
(`pip install attention_zoo[viz]`), both imported on first use.
"""

import importlib.util

from attention_zoo.visualization.collect import (
    KINDS,
    OVERLAY_KINDS,
    AttentionMap,
    collect_attention,
    grid_to_pixels,
    has_attention,
    make_part,
    query_cell,
    register_layer_handler,
    register_model_handler,
    resize_maps,
)
from attention_zoo.visualization.images import ImageReadError, load_image, prepare_image, read_image
from attention_zoo.visualization.plots import (
    SECTIONS,
    as_images,
    display_image,
    normalize_map,
    overlay,
    plot_attention,
    plot_attention_maps,
    plot_channel_affinity,
    plot_channel_weights,
    plot_glimpses,
    plot_overlays,
    plot_path_weights,
    plot_selected_patches,
    plot_spatial_transformer,
    save_figure,
    select_maps,
)



def missing_dependencies():
    """The plotting packages (of the `viz` extra) that are not installed: a list of names."""
    return [module for module in ("matplotlib", "PIL") if importlib.util.find_spec(module) is None]


__all__ = [
    "KINDS",
    "OVERLAY_KINDS",
    "SECTIONS",
    "AttentionMap",
    "ImageReadError",
    "as_images",
    "collect_attention",
    "display_image",
    "grid_to_pixels",
    "has_attention",
    "load_image",
    "make_part",
    "missing_dependencies",
    "normalize_map",
    "overlay",
    "plot_attention",
    "plot_attention_maps",
    "plot_channel_affinity",
    "plot_channel_weights",
    "plot_glimpses",
    "plot_overlays",
    "plot_path_weights",
    "plot_selected_patches",
    "plot_spatial_transformer",
    "prepare_image",
    "query_cell",
    "read_image",
    "register_layer_handler",
    "register_model_handler",
    "resize_maps",
    "save_figure",
    "select_maps",
]
