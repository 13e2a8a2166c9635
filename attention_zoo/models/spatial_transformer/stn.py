"""Spatial Transformer Networks (Jaderberg et al., NIPS 2015) for classification.

- `build_stn_cnn`: the common setup for 60x60 cluttered MNIST. An affine spatial transformer
  on the 60x60 input samples a 30x30 image, which a small CNN classifies (conv 32@3x3 "same",
  max-pool 2, conv 32@3x3 "valid", max-pool 2, dense 256, dense classes; ReLU).
- `build_cluttered_cnn`: the same CNN without the transformer, on the full input: the
  baseline the transformer has to beat.
- `build_stn_classifier`: a spatial transformer in front of any registered zoo classifier.

The paper's own cluttered-MNIST networks are not fully specified; this layout follows the
widely used Keras reproduction (localisation net and classifier as in REFERENCE.md), with
ReLU after the localisation convolutions as well.
"""

import keras

from attention_zoo.layers.spatial_transformer import SpatialTransformer
from attention_zoo.models.common import classifier_head, model_inputs

DEFAULT_SIZE = 60
STN_OUTPUT_SIZE = (30, 30)
# The default localisation net (pool 2, conv 5 valid, pool 2, conv 5 valid) needs 28 pixels.
STN_MIN_SIZE = 28
CNN_MIN_SIZE = 8

TRANSFORMER_OPTIONS = (
    "transform_type",
    "padding_mode",
    "localization_filters",
    "localization_kernel_size",
    "localization_pool_size",
    "localization_units",
    "localization_activation",
    "localization_network",
)


def _static_shape(input_shape, default_size):
    """Models that flatten or resample need static sizes: None sizes become the default."""
    height, width, channels = input_shape
    return (height or default_size, width or default_size, channels)


def _check_options(name, overrides, allowed, named=()):
    """`allowed`: options collected in `overrides`; `named`: the builder's own keywords."""
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {unknown}. It takes {sorted(set(allowed) | set(named))} besides weights, "
            "num_classes, include_top, input_shape, pooling and features_only."
        )


def _transformer(output_size, options):
    return SpatialTransformer(output_size=output_size, return_attention=True, name="spatial_transformer", **options)


def cluttered_cnn_features(x, filters=32):
    """Two conv-ReLU-pool blocks; the first conv keeps the size, the second is valid."""
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(filters, 3, activation="relu", name="conv2")(x)
    return keras.layers.MaxPooling2D(2, name="pool2")(x)


def cluttered_cnn_head(features, num_classes, include_top, pooling, hidden_units=256, classifier_activation=None):
    """Flatten -> dense 256 ReLU -> dense classes; without the top, the zoo's pooling options."""
    if not include_top:
        return classifier_head(features, num_classes, include_top, pooling)
    x = keras.layers.Flatten(name="flatten")(features)
    x = keras.layers.Dense(hidden_units, activation="relu", name="fc1")(x)
    return keras.layers.Dense(num_classes, activation=classifier_activation, name="fc")(x)


def build_cluttered_cnn(*, num_classes, include_top, input_shape, pooling, name, classifier_activation=None, **overrides):
    """The plain CNN baseline on the whole image (default 60x60x1)."""
    _check_options(name, overrides, (), ("classifier_activation",))
    input_shape = _static_shape(input_shape, DEFAULT_SIZE)
    inputs, x = model_inputs(input_shape, name, min_size=CNN_MIN_SIZE)
    outputs = cluttered_cnn_head(cluttered_cnn_features(x), num_classes, include_top, pooling, 256, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def build_stn_cnn(
    *,
    num_classes,
    include_top,
    input_shape,
    pooling,
    name,
    transformer_output_size=STN_OUTPUT_SIZE,
    classifier_activation=None,
    **overrides,
):
    """ST-CNN: spatial transformer (60x60 -> 30x30 by default), then the cluttered-MNIST CNN.

    Options: transformer_output_size, classifier_activation and the SpatialTransformer's
    transform_type, padding_mode and localization_* arguments.
    """
    _check_options(name, overrides, TRANSFORMER_OPTIONS, ("transformer_output_size", "classifier_activation"))
    input_shape = _static_shape(input_shape, DEFAULT_SIZE)
    inputs, x = model_inputs(input_shape, name, min_size=STN_MIN_SIZE)
    x, _ = _transformer(transformer_output_size, overrides)(x)
    outputs = cluttered_cnn_head(cluttered_cnn_features(x), num_classes, include_top, pooling, 256, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def build_stn_classifier(
    *,
    num_classes,
    include_top,
    input_shape,
    pooling,
    name,
    classifier=None,
    classifier_options=None,
    transformer_output_size=None,
    **overrides,
):
    """A spatial transformer in front of the zoo classifier named `classifier`.

    The classifier is built with `attention_zoo.get(classifier, num_classes=...,
    input_shape=(out_h, out_w, C), **classifier_options)` and nested as one layer named after
    it (its attention maps: `attention_zoo.attention_outputs(model.get_layer(classifier))`).

    Args:
        classifier: a registered model name, e.g. "resnet18" (required).
        classifier_options: options for `get` of that model, e.g. {"attention": "se"} or
            {"weights": "resnet18.weights.h5"}.
        transformer_output_size: (H, W) the transformer samples; None keeps the input size.
        input_shape: None sizes become the classifier's default input size.
        Other options go to the SpatialTransformer (transform_type, localization_*, ...).
    """
    from attention_zoo import registry

    _check_options(name, overrides, TRANSFORMER_OPTIONS, ("classifier", "classifier_options", "transformer_output_size"))
    if classifier is None:
        raise ValueError(
            f"{name} needs classifier=<a registered model name>, e.g. "
            f"attention_zoo.get('{name}', classifier='resnet18', num_classes=5)"
        )
    if classifier == name or classifier == "stn_classifier":
        raise ValueError(f"{name}: classifier must be a plain classifier, not {classifier!r} itself")
    try:
        info = registry.model_info(classifier)
    except registry.UnknownModelError as error:
        raise registry.UnknownModelError(f"{name}: classifier={classifier!r} is not a registered model. {error}") from None
    clashing = sorted(set(classifier_options or {}) & {"num_classes", "include_top", "input_shape", "pooling"})
    if clashing:
        raise ValueError(
            f"{name}: set {clashing} on {name} itself, not in classifier_options (the classifier's input "
            "shape is the transformer's output)"
        )
    input_shape = _static_shape(input_shape, info.default_input_size)
    output_size = transformer_output_size or input_shape[:2]
    transformer = _transformer(output_size, overrides)
    inner = registry.get(
        classifier,
        num_classes=num_classes,
        include_top=include_top,
        input_shape=(*transformer.output_size, input_shape[-1]),
        pooling=pooling,
        **(classifier_options or {}),
    )
    inputs, x = model_inputs(input_shape, name, min_size=STN_MIN_SIZE)
    x, _ = transformer(x)
    return keras.Model(inputs, inner(x), name=name)


__all__ = [
    "build_cluttered_cnn",
    "build_stn_classifier",
    "build_stn_cnn",
    "cluttered_cnn_features",
    "cluttered_cnn_head",
]
