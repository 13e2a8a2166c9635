"""The model to export: a built model, a `.keras` file or a registered name, at a static shape."""

import os

import keras

from attention_zoo.export.errors import ExportError


def require_tensorflow(what):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ExportError(
            f"{what} converts TensorFlow graphs and needs the TensorFlow backend; Keras runs on {backend!r}. "
            "Set KERAS_BACKEND=tensorflow before Python starts (a .keras file saved on any backend loads there)."
        )


def resolve_model(source, *, input_size=None, num_classes=None, weights=None, options=None):
    """`source` as a built Keras model.

    source: a `keras.Model` (used as it is), the path of a `.keras` file, or a registered
        name, built as `attention_zoo.get` builds it with `num_classes`, `weights` and family
        `options`, on a square input of `input_size` (default: the size the tagged weights were
        trained at, or the model's `default_input_size`).
    """
    if isinstance(source, keras.Model):
        if weights is not None or num_classes is not None or options:
            raise ExportError("weights, num_classes and options apply to registered model names, not to a built model")
        return source
    source = os.fspath(source)
    if source.endswith(".keras") or os.path.isfile(source):
        if weights is not None or num_classes is not None or options:
            raise ExportError(f"weights, num_classes and options apply to registered model names, not to {source}")
        if not os.path.isfile(source):
            raise ExportError(f"model file {source!r} does not exist")
        try:
            return keras.saving.load_model(source)
        except Exception as error:  # Keras raises many types for a bad archive
            raise ExportError(f"cannot load model file {source!r}: {error}") from None
    import attention_zoo
    from attention_zoo.registry import square_input_shape

    # square_input_shape looks the name up first: an unknown name raises, listing the closest ones.
    return attention_zoo.get(
        source,
        weights=weights,
        num_classes=num_classes,
        input_shape=square_input_shape(source, input_size, weights),
        **(options or {}),
    )


def _declared_input_shape(model):
    try:
        inputs = model.inputs  # functional and sequential models
    except AttributeError:
        inputs = None
    if inputs:
        if len(inputs) != 1:
            raise ExportError(f"{model.name} has {len(inputs)} inputs; export handles single-input (image) models")
        return tuple(inputs[0].shape)
    # Subclassed zoo models (DCN, RAM) keep their image shape or the shape they were built with.
    image_shape = getattr(model, "image_shape", None)
    if image_shape:
        return (None, *image_shape)
    built_shapes = list((getattr(model, "_build_shapes_dict", None) or {}).values())
    if len(built_shapes) == 1 and len(built_shapes[0]) == 4:
        return tuple(built_shapes[0])
    raise ExportError(f"cannot tell the input shape of {model.name}: build it (model.build(shape)) before exporting")


def static_input_shape(model, batch=1, input_size=None):
    """(batch, height, width, channels) to export at: the model's own sizes, with
    `input_size` filling the spatial sizes it leaves open."""
    if not (isinstance(batch, int) and batch >= 1):
        raise ExportError(f"batch must be a positive integer (LiteRT graphs have a static batch); got {batch!r}")
    declared = _declared_input_shape(model)
    if len(declared) != 4:
        raise ExportError(f"{model.name} takes inputs of shape {declared}; export handles images (batch, H, W, C)")
    _, height, width, channels = declared
    if input_size is not None:
        if (height is not None and height != input_size) or (width is not None and width != input_size):
            raise ExportError(f"{model.name} was built for {height}x{width} images; got input_size {input_size}")
        height = width = input_size
    if height is None or width is None or channels is None:
        raise ExportError(
            f"{model.name} accepts images of any size ({declared}); pass input_size: a LiteRT file has static shapes"
        )
    return (batch, int(height), int(width), int(channels))
