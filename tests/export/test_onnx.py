"""ONNX export: Keras' `model.export` writes the file (tf2onnx on TensorFlow, torch.onnx on
PyTorch), onnxruntime runs it and it must match the Keras model; JAX is refused with a message.

Runs on every backend (`pip install -e ".[onnx]"`); tests/run.sh runs it in the TensorFlow,
JAX and PyTorch passes.
"""

import json
import os
import sys

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.export import ExportError, ParityError, export_model, formats

pytestmark = pytest.mark.every_backend

BACKEND = keras.backend.backend()
exports_onnx = pytest.mark.skipif(
    BACKEND not in formats.ONNX_PACKAGES, reason=f"Keras has no ONNX route onnxruntime runs on {BACKEND}"
)


def run_in_onnxruntime(path, images):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.run(None, {session.get_inputs()[0].name: images})[0]


def keras_outputs(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def relative_error(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@exports_onnx
def test_a_zoo_model_is_written_verified_in_onnxruntime_and_reported(export_dir):
    model = attention_zoo.get("cnn_cluttered", num_classes=10)
    report = export_model(model, export_dir / "cnn.onnx", format="onnx")
    assert sorted(os.listdir(export_dir)) == ["cnn.onnx", "cnn.onnx.json"]
    assert report.verified and report.runtime == "onnxruntime" and report.samples == 1
    assert report.max_relative_error < 1e-4 and report.tolerance == 1e-4
    assert report.input_shape == (1, 60, 60, 1)
    assert report.file_bytes == os.path.getsize(export_dir / "cnn.onnx")
    assert {"keras", BACKEND, "onnx", "onnxruntime"} <= set(report.versions)
    saved = json.loads((export_dir / "cnn.onnx.json").read_text())
    assert saved["format"] == "onnx" and saved["max_relative_error"] == report.max_relative_error

    # The file stands alone: onnxruntime alone reproduces the Keras model on new images.
    images = np.random.default_rng(1).uniform(0, 1, (1, 60, 60, 1)).astype("float32")
    _, outputs = run_in_onnxruntime(export_dir / "cnn.onnx", images)
    assert relative_error(outputs, keras_outputs(model, images)) < 1e-4


@exports_onnx
def test_an_attention_model_exports_with_a_dynamic_batch(export_dir):
    model = attention_zoo.get("se_resnet18", num_classes=10, input_shape=(64, 64, 3))
    report = export_model(model, export_dir / "se.onnx", format="onnx", batch=None)
    assert report.input_shape == (None, 64, 64, 3)
    # Verified at a batch of 2, not the batch of 1 the exporter traced with.
    assert report.verified and report.samples == 2 and report.max_relative_error < 1e-4

    images = np.random.default_rng(2).uniform(0, 1, (3, 64, 64, 3)).astype("float32")
    session, outputs = run_in_onnxruntime(export_dir / "se.onnx", images)
    assert not isinstance(session.get_inputs()[0].shape[0], int)  # a named, symbolic batch
    assert outputs.shape == (3, 10)
    assert relative_error(outputs, keras_outputs(model, images)) < 1e-4


def test_the_jax_backend_is_refused_naming_the_backends_that_export(export_dir, monkeypatch):
    # Keras converts JAX through jax2onnx, whose pooling onnxruntime rejects; on the JAX pass
    # this is the real backend, elsewhere its name is patched.
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ExportError, match=r"needs the TensorFlow or PyTorch backend.*KERAS_BACKEND=tensorflow"):
        export_model("cnn_cluttered", export_dir / "cnn.onnx", format="onnx")
    assert not os.listdir(export_dir)


@exports_onnx
@pytest.mark.parametrize("package", [*formats.ONNX_PACKAGES.get(BACKEND, ()), "onnxruntime"])
def test_a_missing_package_is_named_with_the_extra_that_installs_it(export_dir, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # import and find_spec see it as absent
    with pytest.raises(ExportError, match=rf"needs {package}, which is not installed: .*attention_zoo\[onnx\]"):
        export_model("cnn_cluttered", export_dir / "cnn.onnx", format="onnx")
    assert not os.listdir(export_dir)


@exports_onnx
def test_without_onnxruntime_an_unverified_export_is_still_possible(export_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    model = attention_zoo.get("cnn_cluttered", num_classes=10)
    report = export_model(model, export_dir / "cnn.onnx", format="onnx", verify=False)
    assert not report.verified and report.parity == []
    assert (export_dir / "cnn.onnx").is_file()


@exports_onnx
def test_a_file_that_disagrees_with_keras_leaves_nothing(export_dir, monkeypatch):
    reload_outputs = formats._reload_outputs
    # A mistranslated graph: its outputs are off by 1 %.
    monkeypatch.setattr(formats, "_reload_outputs", lambda *args: [out * 1.01 for out in reload_outputs(*args)])
    model = attention_zoo.get("cnn_cluttered", num_classes=10)
    with pytest.raises(ParityError, match=r"onnx export differs .* relative error of 0\.01 .*nothing was written"):
        export_model(model, export_dir / "cnn.onnx", format="onnx")
    assert not os.listdir(export_dir)  # neither the file, its report nor a temporary


@exports_onnx
def test_a_file_onnxruntime_cannot_run_is_an_export_error_that_leaves_nothing(export_dir, monkeypatch):
    import onnxruntime

    def rejecting_session(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Unsupported pooling size.")

    monkeypatch.setattr(onnxruntime, "InferenceSession", rejecting_session)
    model = attention_zoo.get("cnn_cluttered", num_classes=10)
    with pytest.raises(ExportError, match="onnxruntime cannot run the exported file: .*Unsupported pooling size"):
        export_model(model, export_dir / "cnn.onnx", format="onnx")
    assert not os.listdir(export_dir)


@exports_onnx
def test_a_converter_failure_is_an_export_error_that_leaves_nothing(export_dir, monkeypatch):
    model = attention_zoo.get("cnn_cluttered", num_classes=10)

    def fails_half_way(filepath, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"\x08\x08half an onnx file")
        raise RuntimeError("Exporting the operator 'aten::grid_sampler' to ONNX is not supported")

    monkeypatch.setattr(model, "export", fails_half_way)
    with pytest.raises(ExportError, match=rf"cannot export .* as onnx on the {BACKEND} backend: .*grid_sampler"):
        export_model(model, export_dir / "cnn.onnx", format="onnx")
    assert not os.listdir(export_dir)
