"""Running a zoo model on images and naming its attention by layer, as NumPy.

`collect_attention(model, images)` returns an ordered dict of `AttentionMap`s, one per map a
layer hands back (a structured map such as CBAM's gives one entry per part, keyed
"layer/part"). Every entry carries a `kind` that says how to read and draw it:

    channel_weights   (B, C)            SE / ECA / CBAM channel gates, BAM channel logits
    spatial_map       (B, h, w)         CBAM / BAM spatial maps, attention pooling weights
    gate              (B, h, w)         gates that multiply a feature map (BAM's 3-D gate
                                        averaged over channels, Attention U-Net coefficients)
    mask              (B, h, w, C)      Residual Attention Network soft masks
    path_weights      (B, M, C)         Selective Kernel softmax over the M paths
    self_attention    (B, hk, wk)       the attention of one query position over the keys
                                        (non-local, DANet position attention); (B, C, C)
                                        for DANet's channel attention (no query)
    sampling_grid     (B, Ho, Wo, 2)    spatial transformer grid (x, y) in [-1, 1]
    glimpse_path      (B, T, 2)         RAM glimpse centres (x, y) in [-1, 1]
    selected_patches  (B, k, 4)         DCN patch boxes (top, left, bottom, right) in pixels

Maps that live on a grid also come `upsampled` to the input resolution (bilinear, half-pixel
centres, i.e. feature cell i covers input pixels [i s, (i + 1) s) at stride s), ready to be
laid over the image.

How a map is read is decided per layer class (`register_layer_handler`) and, for a class
nobody registered, from the map's structure and its shape relative to the layer's feature
map. Models whose attention is not a node of a functional graph (the recurrent and dynamic
capacity models) register a model handler (`register_model_handler`) instead.
"""

import collections
import dataclasses
import difflib
import math

import keras
import numpy as np

from attention_zoo.models.common import attention_outputs

KINDS = (
    "channel_weights",
    "spatial_map",
    "path_weights",
    "self_attention",
    "mask",
    "gate",
    "sampling_grid",
    "glimpse_path",
    "selected_patches",
)
# Kinds with a (B, H, W) map at the input resolution to lay over the image; a layer with
# several (BAM) is drawn with the first in this order, the one that gates the features.
OVERLAY_KINDS = ("gate", "spatial_map", "mask", "self_attention")


@dataclasses.dataclass(eq=False)  # holds arrays: compare maps by identity
class AttentionMap:
    """One attention map of a model, for a batch of images.

    Attributes:
        layer: the layer's name ("inner_model/layer" for a model nested in another).
        part: the key inside a structured map ("channel", "spatial", "gate"), else None.
        kind: one of `KINDS`.
        values: the map, batch first (shapes in the module docstring).
        layer_class: the class name of the layer (or model) that produced it.
        feature_size: (h, w) of the feature map the layer worked on, where it has one.
        stride: input pixels per feature cell (input height / h), where known.
        stage: index of the feature resolution among the model's attention layers, in the
            order the model applies them (0 = the first resolution), where known.
        upsampled: (B, H, W) at the resolution of `frame`, for overlays; None if the kind
            has no spatial map.
        frame: the images the map refers to when they are not the input images (the
            transformed images for a classifier behind a spatial transformer); else None.
        extras: kind-specific details (see the handlers), e.g. the query of a
            self-attention map or the transformed images of a spatial transformer.
    """

    layer: str
    part: object
    kind: str
    values: np.ndarray
    layer_class: str
    feature_size: tuple = None
    stride: float = None
    stage: int = None
    upsampled: np.ndarray = None
    frame: np.ndarray = None
    extras: dict = dataclasses.field(default_factory=dict)

    @property
    def key(self):
        return self.layer if self.part is None else f"{self.layer}/{self.part}"

    def __repr__(self):
        extra = f", stride={self.stride:g}" if self.stride else ""
        return f"AttentionMap({self.key!r}, kind={self.kind!r}, shape={self.values.shape}{extra})"


@dataclasses.dataclass
class _Context:
    """What a handler knows besides the map: the image geometry and the query."""

    input_size: tuple  # (H, W) of the images the layer's model saw
    feature_size: tuple  # (h, w) of the layer's feature map, or None
    query: tuple  # (row, col) in input pixels
    attended: np.ndarray = None  # the layer's output, for handlers that ask for it


def resize_maps(maps, size):
    """(B, h, w) maps -> (B, H, W), bilinear with half-pixel centres (no antialiasing).

    keras.ops keeps it backend-agnostic; on every backend the result matches PyTorch's
    `interpolate(..., align_corners=False)`, so a cell of a stride-s grid lands on the s x s
    input pixels it was computed from.
    """
    maps = np.asarray(maps, dtype="float32")
    size = (int(size[0]), int(size[1]))
    if maps.shape[1:3] == size:
        return maps.copy()
    resized = keras.ops.image.resize(
        maps[..., None], size, interpolation="bilinear", antialias=False, data_format="channels_last"
    )
    return np.asarray(keras.ops.convert_to_numpy(resized), dtype="float32")[..., 0]


# ------------------------------------------------------------------------------ handlers

_LAYER_HANDLERS = {}
_MODEL_HANDLERS = {}


def register_layer_handler(*class_names, attended=False):
    """Registers `handler(layer, attention, context) -> [AttentionMap parts]` for layers of
    the named classes (matched along the class hierarchy, so subclasses inherit it).

    `attention` is the layer's map structure as NumPy; `context.feature_size` the (h, w) of
    its feature map; with `attended=True` `context.attended` also holds the layer's output
    (the spatial transformer draws its transformed images). Parts are made with
    `make_part(...)`; the collector fills in the layer name, class, stride and stage.
    """

    def decorator(handler):
        for name in class_names:
            _LAYER_HANDLERS[name] = (handler, attended)
        return handler

    return decorator


def register_model_handler(*class_names):
    """Registers `handler(model, images, context) -> [AttentionMap parts]` for models whose
    attention is computed outside a functional graph (subclassed models)."""

    def decorator(handler):
        for name in class_names:
            _MODEL_HANDLERS[name] = handler
        return handler

    return decorator


def _lookup(obj, table):
    for cls in type(obj).__mro__:
        if cls.__name__ in table:
            return table[cls.__name__]
    return None


def make_part(kind, values, context=None, part=None, upsample=None, layer=None, **extras):
    """An `AttentionMap` without its layer bookkeeping; `upsample` (B, h, w) is resized to
    the context's input size for overlays."""
    if kind not in KINDS:
        raise ValueError(f"unknown attention kind {kind!r}; expected one of {KINDS}")
    upsampled = None if upsample is None else resize_maps(upsample, context.input_size)
    return AttentionMap(
        layer=layer,
        part=part,
        kind=kind,
        values=np.asarray(values),
        layer_class="",
        upsampled=upsampled,
        extras=extras,
    )


def _as_spatial(values):
    """(B, h, w, 1) or (B, h, w) -> (B, h, w)."""
    values = np.asarray(values, dtype="float32")
    if values.ndim == 4 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(f"expected a spatial map (batch, h, w[, 1]); got shape {values.shape}")
    return values


@register_layer_handler("SqueezeExcite", "EfficientChannelAttention", "ChannelAttention")
def _channel_gates(layer, attention, context):
    return [make_part("channel_weights", np.asarray(attention, dtype="float32"), context)]


@register_layer_handler("SpatialAttention")
def _spatial_gate(layer, attention, context):
    values = _as_spatial(attention)
    return [make_part("spatial_map", values, context, upsample=values)]


@register_layer_handler("AttentionGate")
def _gate(layer, attention, context):
    values = _as_spatial(attention)
    return [make_part("gate", values, context, upsample=values)]


@register_layer_handler("CBAM")
def _cbam(layer, attention, context):
    spatial = _as_spatial(attention["spatial"])
    return [
        make_part("channel_weights", np.asarray(attention["channel"], dtype="float32"), context, part="channel"),
        make_part("spatial_map", spatial, context, part="spatial", upsample=spatial),
    ]


@register_layer_handler("BottleneckAttention")
def _bam(layer, attention, context):
    # BAM's branches are logits; only their combination goes through the sigmoid.
    spatial, gate = _as_spatial(attention["spatial"]), _as_spatial(attention["gate"])
    return [
        make_part(
            "channel_weights", np.asarray(attention["channel"], dtype="float32"), context, part="channel", logits=True
        ),
        make_part("spatial_map", spatial, context, part="spatial", upsample=spatial, logits=True),
        make_part("gate", gate, context, part="gate", upsample=gate),
    ]


def _path_labels(layer, paths):
    dilations = getattr(layer, "dilations", None)
    kernel = getattr(layer, "kernel_size", None)
    if dilations is None or kernel is None or len(dilations) != paths:
        return [f"path {m}" for m in range(paths)]
    # A k x k kernel with dilation d sees what a (k - 1) d + 1 kernel sees (SKNet's "5x5").
    labels = []
    for d in dilations:
        field = (kernel - 1) * d + 1
        labels.append(f"{kernel}x{kernel}" if d == 1 else f"{kernel}x{kernel} dilation {d} ({field}x{field} field)")
    return labels


@register_layer_handler("SelectiveKernel")
def _path_weights(layer, attention, context):
    values = np.asarray(attention, dtype="float32")
    return [make_part("path_weights", values, context, path_labels=_path_labels(layer, values.shape[1]))]


def _key_grid(keys, height, width):
    """(hk, wk, factor) of a key set of `keys` positions taken from an h x w grid: the grid
    itself, or the grid pooled by an integer factor (non-local's subsampled phi and g)."""
    for factor in (1, 2, 3, 4):
        if (height // factor) * (width // factor) == keys:
            return height // factor, width // factor, factor
    # An unknown pooling: the factorisation closest to the query grid's aspect ratio.
    best = None
    for rows in range(1, keys + 1):
        if keys % rows == 0:
            error = abs(math.log(rows / (keys // rows)) - math.log(height / width))
            if best is None or error < best[0]:
                best = (error, rows, keys // rows)
    return best[1], best[2], None


def query_cell(query, input_size, feature_size):
    """The feature cell (row, col) that holds input pixel `query` = (row, col)."""
    (row, col), (height, width), (h, w) = query, input_size, feature_size
    return min(int(row * h / height), h - 1), min(int(col * w / width), w - 1)


def _query_map(matrix, context, part=None, **extras):
    """(B, heads, N, N_keys) attention rows -> the map of the query cell over the key grid."""
    if context.feature_size is None:
        raise ValueError("a self-attention map needs the feature grid of its layer")
    h, w = context.feature_size
    batch, heads, queries, keys = matrix.shape
    if queries != h * w:
        raise ValueError(f"self-attention over {queries} queries does not fit the {h}x{w} feature grid")
    row, col = query_cell(context.query, context.input_size, context.feature_size)
    hk, wk, factor = _key_grid(keys, h, w)
    per_head = np.asarray(matrix[:, :, row * w + col, :], dtype="float32").reshape(batch, heads, hk, wk)
    values = per_head.mean(axis=1)
    if factor is not None:
        # Each pooled key stands for a factor x factor block of cells; spreading its weight
        # over the block keeps the total at one on the feature grid.
        on_grid = np.zeros((batch, h, w), dtype="float32")
        spread = np.repeat(np.repeat(values, factor, axis=1), factor, axis=2) / factor**2
        on_grid[:, : hk * factor, : wk * factor] = spread
    else:
        on_grid = resize_maps(values, (h, w))
        on_grid /= np.maximum(on_grid.sum(axis=(1, 2), keepdims=True), 1e-12)
    return make_part(
        "self_attention",
        values,
        context,
        part=part,
        upsample=on_grid,
        heads=per_head,
        feature_map=on_grid,
        query=tuple(context.query),
        query_cell=(row, col),
        **extras,
    )


@register_layer_handler("NonLocalBlock")
def _non_local(layer, attention, context):
    return [_query_map(np.asarray(attention), context)]


@register_layer_handler("PositionAttention")
def _position_attention(layer, attention, context):
    return [_query_map(np.asarray(attention)[:, None], context)]


@register_layer_handler("ChannelSelfAttention")
def _channel_self_attention(layer, attention, context):
    return [make_part("self_attention", np.asarray(attention, dtype="float32"), context, axis="channels")]


@register_layer_handler("SoftAttentionPooling", "HardAttentionPooling", "LocalAttentionPooling")
def _pooling(layer, attention, context):
    values = np.asarray(attention, dtype="float32")
    if values.ndim == 4:  # several learned queries (B, Q, h, w): one map each, overlay their mean
        return [make_part("spatial_map", values, context, upsample=values.mean(axis=1), queries=values.shape[1])]
    return [make_part("spatial_map", values, context, upsample=values)]


@register_layer_handler("AttentionMask")
def _mask(layer, attention, context):
    values = np.asarray(attention, dtype="float32")
    return [make_part("mask", values, context, upsample=values.mean(axis=-1))]


def grid_to_pixels(grid, image_size):
    """Normalised (x, y) in [-1, 1] -> pixel (x = column, y = row) with pixel i centred at i,
    the align_corners=False convention of the spatial transformer and the glimpse sensor."""
    height, width = image_size
    grid = np.asarray(grid, dtype="float32")
    return (grid + 1.0) * np.array([width, height], dtype="float32") / 2.0 - 0.5


@register_layer_handler("SpatialTransformer", attended=True)
def _sampling_grid(layer, attention, context):
    grid = np.asarray(attention["grid"], dtype="float32")
    return [
        make_part(
            "sampling_grid",
            grid,
            context,
            theta=np.asarray(attention["theta"], dtype="float32"),
            pixels=grid_to_pixels(grid, context.input_size),
            transformed=np.asarray(context.attended, dtype="float32"),
        )
    ]


def _infer_parts(layer, attention, context, part=None):
    """Reads a map of a layer nobody registered from its structure and shape."""
    if isinstance(attention, dict):
        keys = set(attention)
        if {"theta", "grid"} <= keys and context.attended is not None:
            return _sampling_grid(layer, attention, context)
        parts = []
        for key, value in attention.items():
            parts += _infer_parts(layer, value, context, part=key if part is None else f"{part}/{key}")
        return parts
    if isinstance(attention, (list, tuple)):
        parts = []
        for index, value in enumerate(attention):
            parts += _infer_parts(layer, value, context, part=str(index) if part is None else f"{part}/{index}")
        return parts
    values = np.asarray(attention, dtype="float32")
    feature = context.feature_size
    shape = values.shape
    if values.ndim == 2:
        return [make_part("channel_weights", values, context, part=part)]
    if values.ndim == 3:
        if feature is not None and shape[1] == shape[2] == feature[0] * feature[1]:
            return [_query_map(values[:, None], context, part=part)]
        if feature is not None and shape[1:] == tuple(feature):
            return [make_part("spatial_map", values, context, part=part, upsample=values)]
        if shape[-1] == 2:
            pixels = grid_to_pixels(values, context.input_size)
            return [make_part("glimpse_path", values, context, part=part, pixels=pixels, patch_sizes=())]
        if shape[1] <= 8:  # a few paths over the channels
            return [make_part("path_weights", values, context, part=part, path_labels=_path_labels(layer, shape[1]))]
        return [make_part("spatial_map", values, context, part=part, upsample=values)]
    if values.ndim == 4:
        if shape[-1] == 1:
            values = values[..., 0]
            return [make_part("spatial_map", values, context, part=part, upsample=values)]
        if feature is not None and shape[2] == feature[0] * feature[1]:
            return [_query_map(values, context, part=part)]
        return [make_part("mask", values, context, part=part, upsample=values.mean(axis=-1))]
    return []


# ------------------------------------------------------------------------ model handlers


@register_model_handler("RecurrentAttentionModel")
def _glimpses(model, images, context):
    locations = np.asarray(keras.ops.convert_to_numpy(model.glimpse_locations(images)), dtype="float32")
    sensor = model.sensor
    widths = tuple(sensor.patch_size * scale for scale in sensor.scales)
    return [
        make_part(
            "glimpse_path",
            locations,
            context,
            layer=sensor.name,
            pixels=grid_to_pixels(locations, context.input_size),
            patch_sizes=widths,
        )
    ]


def _grid_centres(size, first, step):
    return first + step * np.arange(size, dtype="float32")


def _place_grid(values, centres_y, centres_x, size):
    """Bilinear interpolation of (B, h, w) values known at pixel centres onto an H x W image."""
    rows = np.arange(size[0], dtype="float32")
    cols = np.arange(size[1], dtype="float32")
    along_rows = np.stack([[np.interp(rows, centres_y, column) for column in m.T] for m in values])  # (B, w, H)
    along_rows = np.transpose(along_rows, (0, 2, 1))  # (B, H, w)
    return np.stack([[np.interp(cols, centres_x, row) for row in m] for m in along_rows]).astype("float32")


@register_model_handler("DynamicCapacityNetwork")
def _selected_patches(model, images, context):
    attention = {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in model.attention(images).items()}
    boxes = attention["boxes"]
    saliency = attention["saliency"].astype("float32")
    part = make_part(
        "selected_patches",
        boxes,
        context,
        layer="patch_selection",
        positions=attention["positions"],
        saliency=saliency,
        patches=attention["patches"],
    )
    part.feature_size = saliency.shape[1:3]
    try:
        from attention_zoo.models.dynamic_capacity import blocks

        # Grid cell (r, c) stands for the patch whose box starts at patch_origin(r, c): the
        # patch centre, not r * stride, is where its saliency belongs on the image.
        centre = blocks.PATCH_SIZE / 2.0 - 0.5
        ys = _grid_centres(saliency.shape[1], blocks.patch_origin(0) + centre, blocks.COARSE_STRIDE)
        xs = _grid_centres(saliency.shape[2], blocks.patch_origin(0) + centre, blocks.COARSE_STRIDE)
        part.upsampled = _place_grid(saliency, ys, xs, context.input_size)
    except (ImportError, AttributeError):  # another geometry: spread the grid over the image
        part.upsampled = resize_maps(saliency, context.input_size)
    return [part]


# ---------------------------------------------------------------------------- collection


def _model_channels(model):
    try:
        return model.input_shape[-1]
    except (AttributeError, ValueError):
        image_shape = getattr(model, "image_shape", None)
        return None if not image_shape else image_shape[-1]


def _static_input_size(model):
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = (None,) + tuple(getattr(model, "image_shape", None) or (None, None, None))
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def _as_batch(images, model):
    if not isinstance(images, (np.ndarray, list, tuple)):
        images = keras.ops.convert_to_numpy(images)  # a backend tensor
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(
            f"images must be one image (height, width, channels) or a batch (batch, height, width, channels); "
            f"got shape {images.shape}"
        )
    channels = _model_channels(model)
    if channels is not None and images.shape[-1] != channels:
        raise ValueError(f"{model.name} expects images with {channels} channels; got shape {images.shape}")
    size = _static_input_size(model)
    if size is not None and images.shape[1:3] != size:
        raise ValueError(
            f"{model.name} was built for {size[0]}x{size[1]} images; got shape {images.shape} "
            "(resize the images or build the model for their size)"
        )
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch")
    return images.astype("float32", copy=False) if images.dtype != np.float32 else images


def _check_query(query, size):
    if query is None:
        return size[0] // 2, size[1] // 2
    try:
        row, col = (float(v) for v in query)
    except (TypeError, ValueError):
        raise ValueError(f"query must be a (row, col) pixel position; got {query!r}") from None
    if not (0 <= row < size[0] and 0 <= col < size[1]):
        raise ValueError(f"query {tuple(query)} lies outside the {size[0]}x{size[1]} image")
    return row, col


@dataclasses.dataclass
class _Planned:
    layer: object
    name: str
    structure: object  # the map's structure of KerasTensors
    map_slots: list
    probe_slot: int = None
    attended_slot: int = None
    static_size: tuple = None


def _spatial_size(tensor):
    shape = tuple(tensor.shape)
    if len(shape) == 4 and shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    return None


def _nested_models(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model) and getattr(layer, "inputs", None) and layer._inbound_nodes:
            if attention_outputs(layer) or any(isinstance(sub, keras.Model) for sub in layer.layers):
                yield layer


def _wanted(name, wanted):
    return wanted is None or name in wanted or any(w.startswith(name + "/") for w in wanted)


def _plan(model, wanted):
    """Which graph tensors the collector computes: maps, probes for feature sizes not known
    statically, attended outputs for handlers that draw them, inputs of nested models."""
    outputs, planned, nested = [], [], []
    maps = attention_outputs(model)

    def slot(tensor):
        outputs.append(tensor)
        return len(outputs) - 1

    for name, structure in maps.items():
        if not _wanted(name, wanted):
            continue
        layer = model.get_layer(name)
        attended = layer._inbound_nodes[0].outputs[0]  # (attended, attention) flattens attended first
        entry = _Planned(layer, name, structure, [slot(t) for t in keras.tree.flatten(structure)])
        handler = _lookup(layer, _LAYER_HANDLERS)
        needs_attended = handler[1] if handler else isinstance(structure, dict) and "grid" in structure
        if needs_attended:
            entry.attended_slot = slot(attended)
        # The feature grid: of the output, or of the input for layers that pool it away.
        reference = attended if len(attended.shape) == 4 else layer._inbound_nodes[0].input_tensors[0]
        if len(reference.shape) == 4:
            entry.static_size = _spatial_size(reference)
            if entry.static_size is None and (entry.attended_slot is None or reference is not attended):
                # One channel is enough to learn the feature grid at run time.
                entry.probe_slot = slot(reference[:, :, :, :1])
        planned.append(entry)
    for inner in _nested_models(model):
        if _wanted(inner.name, wanted):
            nested.append((inner, slot(inner._inbound_nodes[0].input_tensors[0])))
    return outputs, planned, nested


def _run(collector, images, batch_size):
    # JAX runs an eager call op by op, compiling each op: one compiled graph is faster.
    compiled = keras.backend.backend() == "jax"
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        result = collector.predict_on_batch(batch) if compiled else collector(batch, training=False)
        chunks.append([np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(result)])
    return [np.concatenate(parts, axis=0) for parts in zip(*chunks)]


def _collect_functional(model, images, wanted, query, batch_size):
    outputs, planned, nested = _plan(model, wanted)
    if not outputs:
        return []
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    collector = keras.Model(inputs, outputs, name=f"{model.name}_attention")
    arrays = _run(collector, images, batch_size)
    input_size = images.shape[1:3]
    parts = []
    for entry in planned:
        attention = keras.tree.pack_sequence_as(entry.structure, [arrays[i] for i in entry.map_slots])
        if entry.static_size is not None:
            feature_size = entry.static_size
        elif entry.probe_slot is not None:
            feature_size = arrays[entry.probe_slot].shape[1:3]
        elif entry.attended_slot is not None and arrays[entry.attended_slot].ndim == 4:
            feature_size = arrays[entry.attended_slot].shape[1:3]
        else:
            feature_size = None
        feature_size = None if feature_size is None else tuple(int(s) for s in feature_size)
        context = _Context(
            input_size,
            feature_size,
            query,
            None if entry.attended_slot is None else arrays[entry.attended_slot],
        )
        handler = _lookup(entry.layer, _LAYER_HANDLERS)
        made = handler[0](entry.layer, attention, context) if handler else _infer_parts(entry.layer, attention, context)
        for part in made:
            part.layer = entry.name
            part.layer_class = type(entry.layer).__name__
            if part.feature_size is None:
                part.feature_size = feature_size
            # A transformer's output is a new image, not a stage of the network.
            if part.feature_size is not None and part.kind != "sampling_grid":
                part.stride = input_size[0] / part.feature_size[0]
        parts += made
    for inner, input_slot in nested:
        frames = arrays[input_slot]
        inner_wanted = None
        if wanted is not None and inner.name not in wanted:
            inner_wanted = {w[len(inner.name) + 1 :] for w in wanted if w.startswith(inner.name + "/")}
        scale = (frames.shape[1] / input_size[0], frames.shape[2] / input_size[1])
        inner_query = (min(query[0] * scale[0], frames.shape[1] - 1), min(query[1] * scale[1], frames.shape[2] - 1))
        for part in _collect_functional(inner, frames, inner_wanted, inner_query, batch_size):
            part.layer = f"{inner.name}/{part.layer}"
            if part.frame is None:
                part.frame = frames
            parts.append(part)
    return parts


def _available(model):
    names = list(attention_outputs(model)) if hasattr(model, "layers") else []
    for inner in _nested_models(model) if hasattr(model, "layers") else ():
        names += [f"{inner.name}/{name}" for name in _available(inner)]
    return names


def _assign_stages(parts):
    strides = []
    for part in parts:
        if part.stride is not None and part.frame is None:
            key = round(part.stride, 3)
            if key not in strides:
                strides.append(key)
            part.stage = strides.index(key)
    # Maps of a nested model count their stages on their own.
    nested = collections.defaultdict(list)
    for part in parts:
        if part.stride is not None and part.frame is not None:
            nested[part.layer.split("/")[0]].append(part)
    for group in nested.values():
        strides = []
        for part in group:
            key = round(part.stride, 3)
            if key not in strides:
                strides.append(key)
            part.stage = strides.index(key)


def collect_attention(model, images, layers=None, query=None, batch_size=8):
    """Runs `model` on `images` and returns its attention maps, named by layer.

    Args:
        model: a zoo model (built with `attention_zoo.get` or loaded from a `.keras` file);
            any functional model whose attention layers hand their maps back works, and so
            do the recurrent attention and dynamic capacity models.
        images: one image (H, W, C) or a batch (B, H, W, C), preprocessed as the model
            expects.
        layers: names of the layers to collect (or "layer/part" keys; "inner/layer" for a
            model nested in another); None for all.
        query: (row, col) in input pixels whose self-attention map is returned; default
            the image centre.
        batch_size: images per forward pass.

    Returns:
        An ordered dict {key: AttentionMap} in the order the model applies the layers; the
        key is the layer name, or "layer/part" for structured maps (CBAM's channel and
        spatial gates).
    """
    images = _as_batch(images, model)
    query = _check_query(query, images.shape[1:3])
    wanted = None if layers is None else {layers} if isinstance(layers, str) else set(layers)
    model_handler = _lookup(model, _MODEL_HANDLERS)
    if model_handler is not None:
        context = _Context(images.shape[1:3], None, query)
        parts = model_handler(model, images, context)
        for part in parts:
            part.layer_class = part.layer_class or type(model).__name__
        available = [part.key for part in parts]
    else:
        available = _available(model)
        if wanted is not None:
            _check_wanted(model, wanted, available)
        parts = _collect_functional(model, images, wanted, query, int(batch_size))
    _assign_stages(parts)
    maps = collections.OrderedDict((part.key, part) for part in parts if _selected(part, wanted))
    if wanted is not None:
        unmatched = sorted(w for w in wanted if not any(_selected(part, {w}) for part in parts))
        if unmatched:
            raise ValueError(
                f"{model.name}: no attention map matches {', '.join(repr(w) for w in unmatched)}. "
                f"Its maps: {', '.join(part.key for part in parts) or 'none'}."
            )
    return maps


def _matches(name, candidate):
    """Whether `name` (a layer, a "layer/part" key or a nested model) names `candidate`."""
    return candidate == name or candidate.startswith(name + "/") or name.startswith(candidate + "/")


def _selected(part, wanted):
    if wanted is None:
        return True
    return any(part.key == w or part.layer == w or part.layer.startswith(w + "/") for w in wanted)


def _check_wanted(model, wanted, available):
    missing = sorted(w for w in wanted if not any(_matches(w, a) for a in available))
    if missing:
        close = difflib.get_close_matches(missing[0], available, n=3)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(
            f"{model.name} has no attention map named {', '.join(repr(m) for m in missing)}. "
            f"Its attention layers: {', '.join(available) or 'none'}.{hint}"
        )


def has_attention(model):
    """Whether `collect_attention` finds any attention in `model`."""
    return _lookup(model, _MODEL_HANDLERS) is not None or bool(_available(model))


__all__ = [
    "KINDS",
    "OVERLAY_KINDS",
    "AttentionMap",
    "collect_attention",
    "grid_to_pixels",
    "has_attention",
    "make_part",
    "query_cell",
    "register_layer_handler",
    "register_model_handler",
    "resize_maps",
]
