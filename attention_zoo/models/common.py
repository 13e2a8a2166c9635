"""Pieces every family shares: the input check, the classification head, multi-scale
features and access to the attention maps of a built model.

Conventions that let these work on any built or loaded zoo model:
- the last layer of the stage at stride 2**(s + 1) is named `stage{s}_output`;
- attention layers are built with `return_attention=True`, so their maps are graph nodes.
"""

import keras

from attention_zoo.layers.base import AttentionLayer, register_layer

PYRAMID_LEVELS = {"P2": "stage1_output", "P3": "stage2_output", "P4": "stage3_output", "P5": "stage4_output"}


@register_layer
class InputGuard(keras.layers.Layer):
    """Identity that turns too-small or wrongly shaped images into an error naming the model.

    Checks what is known when the model is called: shapes of real tensors are static on every
    backend, so an eager call with a 16x16 image fails here rather than deep in a conv.
    """

    def __init__(self, model_name, min_size, channels, **kwargs):
        super().__init__(**kwargs)
        self.model_name = model_name
        self.min_size = int(min_size)
        self.channels = int(channels)

    def _check(self, shape):
        if len(shape) != 4:
            raise ValueError(
                f"{self.model_name} expects a batch of images of rank 4 (batch, height, width, "
                f"{self.channels}); got shape {tuple(shape)}"
            )
        if shape[-1] is not None and shape[-1] != self.channels:
            raise ValueError(
                f"{self.model_name} expects images with {self.channels} channels (NHWC); got shape {tuple(shape)}"
            )
        for size in shape[1:3]:
            if size is not None and size < self.min_size:
                raise ValueError(
                    f"{self.model_name} needs images of at least {self.min_size}x{self.min_size} pixels "
                    f"(its total stride); got shape {tuple(shape)}"
                )

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        self._check(tuple(inputs.shape))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(model_name=self.model_name, min_size=self.min_size, channels=self.channels)
        return config


def model_inputs(input_shape, model_name, min_size):
    """The model's Input and the guarded tensor that the network starts from."""
    inputs = keras.Input(shape=input_shape, name="images")
    guarded = InputGuard(model_name, min_size, input_shape[-1], name="input_guard")(inputs)
    return inputs, guarded


def classifier_head(features, num_classes, include_top, pooling, drop_rate=0.0, classifier_activation=None):
    """keras.applications' head contract: top -> logits (or activation), else optional pooling."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(features)
        if drop_rate:
            x = keras.layers.Dropout(drop_rate, name="head_dropout")(x)
        return keras.layers.Dense(num_classes, activation=classifier_activation, name="fc")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="global_pool")(features)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="global_pool")(features)
    return features


def _first_output(layer):
    return keras.tree.flatten(layer.output)[0]


def pyramid_outputs(model):
    """{"P2": stride-4 features, ..., "P5": stride-32} of a zoo backbone, as graph tensors."""
    names = {layer.name for layer in model.layers}
    missing = [name for name in PYRAMID_LEVELS.values() if name not in names]
    if missing:
        raise ValueError(f"model '{model.name}' has no multi-scale features (missing layers {missing})")
    return {level: _first_output(model.get_layer(name)) for level, name in PYRAMID_LEVELS.items()}


def feature_model(model):
    """A model from the same inputs to the multi-scale features, sharing the weights (and the
    record of loaded pretrained weights, whose preprocessing the features need too)."""
    features = keras.Model(model.input, pyramid_outputs(model), name=f"{model.name}_features")
    if hasattr(model, "pretrained_weights"):
        features.pretrained_weights = model.pretrained_weights
    return features


def attention_outputs(model):
    """{layer name: attention map} of every attention layer that hands its map back.

    Maps keep their layer's structure (CBAM's is a dict of channel and spatial gates), so
    `keras.Model(model.input, attention_outputs(model))` computes them all in one pass.
    """
    maps = {}
    for layer in model.layers:
        if isinstance(layer, AttentionLayer) and layer.return_attention:
            node = layer._inbound_nodes[0]
            # Keras keeps a node's outputs flattened; a symbolic re-trace recovers the nesting.
            structure = layer.compute_output_spec(*node.arguments.args, **node.arguments.kwargs)
            maps[layer.name] = keras.tree.pack_sequence_as(structure, node.outputs)[1]
    return maps
