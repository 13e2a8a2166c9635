"""A failed export says why, names the layer at fault, and leaves nothing behind."""

import os

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.export import (
    ExportError,
    ParityError,
    UnsupportedOpError,
    export_model,
    export_tflite,
    verify,
)


class ProjectiveWarp(keras.layers.Layer):
    """Uses keras.ops.image.affine_transform, which TensorFlow implements with an op
    (ImageProjectiveTransformV3) that has no LiteRT builtin kernel."""

    def call(self, images):
        identity = keras.ops.convert_to_tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
        return keras.ops.image.affine_transform(images, keras.ops.tile(identity, (keras.ops.shape(images)[0], 1)))


def tiny_model(with_flex_layer=False):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="stem")(inputs)
    if with_flex_layer:
        x = ProjectiveWarp(name="warp")(x)
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="tiny")


def test_an_op_without_builtin_kernel_is_an_error_naming_op_and_layer(export_dir):
    with pytest.raises(UnsupportedOpError, match=r"ImageProjectiveTransformV3 \(in layer 'warp'\)") as caught:
        export_tflite(tiny_model(with_flex_layer=True), export_dir / "tiny.tflite")
    assert caught.value.ops == {"ImageProjectiveTransformV3": ["warp"]}
    assert not os.listdir(export_dir)


def test_a_parity_failure_leaves_no_file(export_dir, monkeypatch):
    path = export_dir / "tiny.tflite"
    run_file = verify.run_file
    # A miscompiled file: its outputs are off by 1 %.
    monkeypatch.setattr(verify, "run_file", lambda *args: [out * 1.01 for out in run_file(*args)])
    with pytest.raises(ParityError, match=r"relative error of 0\.01 .*nothing was written") as caught:
        export_tflite(tiny_model(), path)
    assert caught.value.report.max_relative_error == pytest.approx(0.01, rel=1e-3)
    assert not os.listdir(export_dir)  # neither the file, its report nor a temporary


def test_the_tolerance_is_the_contract(export_dir, monkeypatch):
    monkeypatch.setattr(verify, "FLOAT32_TOLERANCE", -1.0)  # no file can meet it
    with pytest.raises(ParityError):
        export_tflite(tiny_model(), export_dir / "tiny.tflite")
    assert not os.listdir(export_dir)


def test_a_failed_export_keeps_the_previous_file(export_dir, monkeypatch):
    path = export_dir / "tiny.tflite"
    export_tflite(tiny_model(), path)
    before = path.read_bytes()
    monkeypatch.setattr(verify, "FLOAT32_TOLERANCE", -1.0)
    with pytest.raises(ParityError):
        export_tflite(tiny_model(), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(export_dir)) == ["tiny.tflite", "tiny.tflite.json"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"quantize": "int4"}, r"quantize must be one of \('none', 'float16', 'dynamic', 'int8'\)"),
        ({"io_dtype": "int8"}, "applies to quantize='int8' only"),
        ({"batch": 0}, "batch must be a positive integer"),
        ({"representative_data": "synthetic:zero"}, "synthetic:N"),
        ({"representative_data": "missing.npy"}, "does not exist"),
        ({"representative_data": np.zeros((2, 8, 8, 3), "float32")}, r"the export takes \(N, 16, 16, 3\)"),
    ],
)
def test_bad_arguments_get_clear_errors(arguments, message, export_dir):
    with pytest.raises(ExportError, match=message):
        export_tflite(tiny_model(), export_dir / "tiny.tflite", **arguments)
    assert not os.listdir(export_dir)


def test_models_built_for_any_size_need_an_input_size(export_dir):
    model = attention_zoo.get("resnet18", num_classes=10)
    with pytest.raises(ExportError, match="accepts images of any size.*pass input_size"):
        export_tflite(model, export_dir / "resnet18.tflite")
    with pytest.raises(ExportError, match="was built for 16x16 images; got input_size 32"):
        export_tflite(tiny_model(), export_dir / "tiny.tflite", input_size=32)


def test_file_names_and_model_names_are_checked(export_dir):
    with pytest.raises(ExportError, match="must end with .tflite"):
        export_tflite(tiny_model(), export_dir / "tiny.bin")
    with pytest.raises(attention_zoo.UnknownModelError, match="cbam_resnet50"):
        export_tflite("cbam_resnet05", export_dir / "x.tflite")
    with pytest.raises(ExportError, match="format must be one of"):
        export_model(tiny_model(), export_dir / "x.tflite", format="coreml")


def test_other_backends_get_told_to_use_tensorflow(export_dir, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ExportError, match="needs the TensorFlow backend.*KERAS_BACKEND=tensorflow"):
        export_tflite(tiny_model(), export_dir / "tiny.tflite")
