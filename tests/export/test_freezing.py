"""The export freezes weights without TensorFlow's function rebuild (`export.freezing`): the
file is byte for byte the one TensorFlow's public converter writes, in about half the time
for a ResNet."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import attention_zoo
from attention_zoo.export import convert, freezing, make_interpreter, synthetic_images
from attention_zoo.export import tflite as tflite_export

CASES = [  # a convolutional zoo model in float; the spatial transformer (gathers) in float and int8
    ("se_resnet18", 32, "none"),
    ("stn_cnn", 60, "none"),
    ("stn_cnn", 60, "int8"),
]


def convert_both_ways(model, input_shape, quantize, monkeypatch):
    """(bytes through the zoo's converter, bytes through tf.lite.TFLiteConverter)."""
    calibration = [image[None] for image in synthetic_images(4, input_shape, "unit")]
    io_dtype = "int8" if quantize == "int8" else None
    direct, _ = convert(model, input_shape, quantize, calibration, io_dtype)
    monkeypatch.setattr(tflite_export, "converter_class", lambda: tf.lite.TFLiteConverter)
    public, _ = convert(model, input_shape, quantize, calibration, io_dtype)
    return direct, public


@pytest.mark.parametrize(("name", "size", "quantize"), CASES, ids=[f"{n}-{q}" for n, _, q in CASES])
def test_the_file_is_the_one_tensorflows_public_converter_writes(name, size, quantize, monkeypatch):
    channels = attention_zoo.model_info(name).input_channels
    model = attention_zoo.get(name, num_classes=10, input_shape=(size, size, channels))

    direct, public = convert_both_ways(model, (1, size, size, channels), quantize, monkeypatch)

    assert direct == public


class AddsACapturedConstant(keras.layers.Layer):
    """Holds an eager tensor that is not a variable: a traced function captures it as an input."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = keras.ops.convert_to_tensor(np.arange(4, dtype="float32"))

    def call(self, inputs):
        return inputs + self.offset


def test_captured_constants_are_frozen_and_the_image_stays_the_only_input(monkeypatch):
    images = keras.Input((8, 8, 3))
    model = keras.Model(images, AddsACapturedConstant()(keras.layers.Conv2D(4, 3)(images)))

    direct, public = convert_both_ways(model, (1, 8, 8, 3), "none", monkeypatch)

    assert direct == public
    interpreter, _ = make_interpreter(content=direct)
    (image_input,) = interpreter.get_input_details()
    assert tuple(image_input["shape"]) == (1, 8, 8, 3)


def tiny_model():
    images = keras.Input((8, 8, 3))
    return keras.Model(images, keras.layers.Conv2D(4, 3)(images))


def test_the_installed_tensorflow_takes_the_direct_path(monkeypatch):
    def public_step(self):
        raise AssertionError("the public freezing step ran")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "_freeze_concrete_function", public_step)

    content, _ = convert(tiny_model(), (1, 8, 8, 3))

    assert content


@pytest.mark.parametrize(
    "error",
    [
        AttributeError("module 'convert_to_constants' has no attribute '_replace_variables_by_constants'"),
        TypeError("_FunctionConverterData.__init__() got an unexpected keyword argument"),
    ],
    ids=["missing", "other-signature"],
)
def test_internals_missing_or_of_another_shape_fall_back_to_the_public_step(error, monkeypatch):
    model = tiny_model()
    expected, _ = convert(model, (1, 8, 8, 3))

    def internals_of_another_tensorflow(function):
        raise error

    monkeypatch.setattr(freezing, "_freeze_without_rebuild", internals_of_another_tensorflow)

    assert convert(model, (1, 8, 8, 3))[0] == expected
