"""Builders behind the registered names: the DCN itself and the two baselines of the paper.

`dcn_coarse` (coarse layers + top) and `dcn_fine` (fine layers applied densely to the whole
image + top) are the paper's reference points for accuracy and cost; they are functional models
with the DCN's layer names, so `attention_zoo.count_macs` costs them directly.
"""

import keras

from attention_zoo.models.common import model_inputs
from attention_zoo.models.dynamic_capacity import blocks
from attention_zoo.models.dynamic_capacity.network import DynamicCapacityNetwork

DEFAULT_IMAGE_SIZE = 100  # cluttered MNIST 100x100 of the paper
DCN_OPTIONS = ("num_patches", "hint_weight", "classifier_activation")
BASELINE_OPTIONS = ("classifier_activation",)


def _check_options(name, overrides, allowed):
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {unknown}. It takes {sorted(allowed)} besides weights, num_classes, "
            "include_top, input_shape and pooling."
        )


def static_image_shape(input_shape):
    """The factory's (H, W, C) with the paper's 100x100 for sizes the user left open."""
    height, width, channels = input_shape
    return (height or DEFAULT_IMAGE_SIZE, width or DEFAULT_IMAGE_SIZE, channels)


def build_dcn(*, num_classes, include_top, input_shape, pooling, name, **options):
    _check_options(name, options, DCN_OPTIONS)
    if not include_top:
        raise ValueError(
            f"{name} has no headless form: its attention is the gradient of the top classifier's entropy, "
            "so the classifier is part of every forward pass. Use include_top=True (the default)."
        )
    del pooling  # with the top, pooling does not apply (keras.applications' contract)
    image_shape = static_image_shape(input_shape)
    model = DynamicCapacityNetwork(image_shape=image_shape, num_classes=num_classes, name=name, **options)
    model.build((None, *image_shape))
    return model


def build_baseline(
    kind, *, num_classes, include_top, input_shape, pooling, name, classifier_activation=None, **options
):
    """`kind` "coarse" or "fine": that stack on the whole image, then the shared top layers.

    Without the top, the output is the top convolution's map (batch, Hc', Wc', 96), or its
    global average / max ("avg" / "max"; the paper's top pools by max)."""
    _check_options(name, options, BASELINE_OPTIONS)
    inputs, x = model_inputs(static_image_shape(input_shape), name, blocks.min_image_size())
    if kind == "coarse":
        x = blocks.apply(blocks.coarse_layers(), x)
    elif kind == "fine":
        x = blocks.apply([blocks.image_padding(), *blocks.fine_layers()], x)
    else:
        raise ValueError(f"kind must be 'coarse' or 'fine'; got {kind!r}")
    x = blocks.apply(blocks.top_layers(num_classes, include_top=include_top), x)
    if include_top and classifier_activation is not None:
        x = keras.layers.Activation(classifier_activation, name="predictions")(x)
    elif not include_top and pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    elif not include_top and pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="global_pool")(x)
    return keras.Model(inputs, x, name=name)
