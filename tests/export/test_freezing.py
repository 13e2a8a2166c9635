"""The export freezes weights without TensorFlow's function rebuild (`export.freezing`), and
runs LiteRT's pass that clamps infinite constants only where there is one: the file is byte for
byte the one TensorFlow's public converter writes with its defaults, in less than half the time
for a ResNet."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import attention_zoo
from attention_zoo.export import convert, export_tflite, freezing, make_interpreter, synthetic_images
from attention_zoo.export import tflite as tflite_export
from attention_zoo.export.ops import infinite_constants
from attention_zoo.export.tflite import _convert_once

CASES = [  # a convolutional zoo model in float; the spatial transformer (gathers) in float and int8
    ("se_resnet18", 32, "none"),
    ("stn_cnn", 60, "none"),
    ("stn_cnn", 60, "int8"),
]


class ConverterWithEveryDefaultPass(tf.lite.TFLiteConverter):
    """tf.lite.TFLiteConverter that keeps clamping infinite constants, its default, whatever
    the export sets."""

    canonicalizing_inf_as_min_max_float = property(lambda self: True, lambda self, value: None)


def convert_both_ways(model, input_shape, quantize, monkeypatch):
    """(bytes through the zoo's converter, bytes through tf.lite.TFLiteConverter as it comes)."""
    calibration = [image[None] for image in synthetic_images(4, input_shape, "unit")]
    io_dtype = "int8" if quantize == "int8" else None
    direct, _ = convert(model, input_shape, quantize, calibration, io_dtype)
    monkeypatch.setattr(tflite_export, "converter_class", lambda: ConverterWithEveryDefaultPass)
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


class KeepsPositiveLogs(keras.layers.Layer):
    """exp of its input where positive, else exp(-inf) = 0: a graph with an infinite constant."""

    def call(self, inputs):
        return keras.ops.exp(keras.ops.where(inputs > 0, inputs, -np.inf))


def tiny_model(first_layer=None):
    """A 3x3 convolution on 8x8 images, after `first_layer` (a layer class) if given."""
    images = keras.Input((8, 8, 3))
    features = first_layer()(images) if first_layer else images
    return keras.Model(images, keras.layers.Conv2D(4, 3)(features))


def test_infinite_constants_are_clamped_to_the_largest_float_as_tensorflow_does(monkeypatch, tmp_path):
    model = tiny_model(KeepsPositiveLogs)

    direct, public = convert_both_ways(model, (1, 8, 8, 3), "none", monkeypatch)

    assert direct == public
    assert infinite_constants(direct) == []
    monkeypatch.undo()
    report = export_tflite(model, tmp_path / "clamped.tflite")
    assert report.verified and report.max_relative_error <= 1e-4


def test_a_file_reports_its_infinite_constants():
    model = tiny_model(KeepsPositiveLogs)

    content = _convert_once(model, (1, 8, 8, 3), "none", None, None, (), clamp_infinities=False)

    assert len(infinite_constants(content)) == 1
    assert infinite_constants(convert(model, (1, 8, 8, 3))[0]) == []


@pytest.mark.parametrize(
    ("layer", "clamping_runs"), [(None, [False]), (KeepsPositiveLogs, [False, True])], ids=["finite", "infinite"]
)
def test_only_a_graph_with_an_infinite_constant_is_converted_a_second_time_with_the_clamping_pass(
    layer, clamping_runs, monkeypatch
):
    model = tiny_model(layer)
    runs = []

    def recording(*args):
        runs.append(args[-1])
        return _convert_once(*args)

    monkeypatch.setattr(tflite_export, "_convert_once", recording)

    convert(model, (1, 8, 8, 3))

    assert runs == clamping_runs


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
