"""The contract every attention layer of the zoo follows.

An attention layer computes a gate (or attention weights) and applies it. Users mostly want
the attended tensor; visualisation wants the gate too. So `call` returns the attended tensor,
and `(attended, attention)` when the layer was built with `return_attention=True`. The zoo's
model builders always ask for the attention, so that it stays reachable as a node of the
functional graph of any built or loaded model (see `attention_zoo.attention_outputs`).

Subclasses implement `attend(inputs, training)` returning both values, and `count_macs` so
that `attention_zoo.utils.count_macs` can cost a whole model.
"""

import keras

SERIALIZATION_PACKAGE = "attention_zoo"


def register_layer(cls):
    """Registers a layer class under the zoo's package name so `.keras` files load in safe mode."""
    return keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)(cls)


class AttentionLayer(keras.layers.Layer):
    def __init__(self, return_attention=False, **kwargs):
        super().__init__(**kwargs)
        self.return_attention = bool(return_attention)

    def attend(self, inputs, training=None):
        """Returns `(attended, attention)`."""
        raise NotImplementedError

    def call(self, inputs, training=None):
        attended, attention = self.attend(inputs, training=training)
        if self.return_attention:
            return attended, attention
        return attended

    def count_macs(self, input_shape):
        """Multiply-accumulates of this layer's convolutions and matrix products, per example."""
        raise NotImplementedError(f"{type(self).__name__} does not count its MACs")

    def get_config(self):
        config = super().get_config()
        config["return_attention"] = self.return_attention
        return config


def pair(value):
    """(a, b) from an int or a 2-sequence: Keras' convention for kernel sizes, strides, dilations."""
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def check_channels(layer, input_shape, channels):
    """Raises a clear error when a layer built for `channels` sees another channel count."""
    if len(input_shape) != 4:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' expects NHWC feature maps of rank 4; "
            f"got shape {tuple(input_shape)}"
        )
    if input_shape[-1] is not None and input_shape[-1] != channels:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' was created for {channels} channels; "
            f"got input with {input_shape[-1]} channels (shape {tuple(input_shape)})"
        )


def make_divisible(value, divisor=8, min_value=None, round_limit=0.9):
    """Rounds a channel count to a multiple of `divisor` the way timm does.

    timm sizes SE/SK reductions with this, e.g. SE on 64 channels gets 8, not 64 // 16 = 4,
    so matching its weights needs the same rounding.
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def reduced_channels(channels, reduction=16, rd_channels=None, rd_divisor=1):
    """Width of an attention bottleneck: explicit `rd_channels`, else `channels / reduction`
    (integer division when `rd_divisor` is 1, as in the papers' code; timm's rounding otherwise)."""
    if rd_channels is not None:
        return int(rd_channels)
    if rd_divisor == 1:
        return max(1, channels // reduction)
    return make_divisible(channels / reduction, rd_divisor, round_limit=0.0)
