"""`export_model`: one entry point for LiteRT, SavedModel and ONNX."""

import os
import time

import keras
import numpy as np

from attention_zoo.export import report as reports
from attention_zoo.export import samples as sample_inputs
from attention_zoo.export import verify as verification
from attention_zoo.export.errors import ExportError
from attention_zoo.export.source import resolve_model, static_input_shape
from attention_zoo.export.tflite import export_tflite

FORMATS = ("tflite", "saved_model", "onnx")
# Keras' names for the formats it writes itself.
_KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx"}


def _keras_export(model, staged, format, input_shape):
    try:
        model.export(
            staged,
            format=_KERAS_FORMATS[format],
            input_signature=[keras.InputSpec(shape=input_shape, dtype="float32")],
            verbose=False,
        )
    except ImportError as error:
        raise ExportError(f"{format} export needs a package that is not installed: {error}") from None
    except (NotImplementedError, ValueError) as error:
        raise ExportError(
            f"Keras cannot export {model.name} as {format} on the {keras.backend.backend()} backend: {error}"
        ) from None


def _reload_outputs(staged, format, images):
    """Outputs of the written artifact, or None where no runtime to read it is installed."""
    if format == "saved_model":
        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        loaded = tf.saved_model.load(staged)  # kept referenced: `serve` reads its variables
        served = loaded.serve(images)
    else:
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(staged)
        served = session.run(None, {session.get_inputs()[0].name: images})
    return [np.asarray(tensor, dtype="float32") for tensor in keras.tree.flatten(served)]


def export_model(model_or_path, path, *, format="tflite", batch=1, input_size=None, verify=True, **options):
    """Exports to `format` at `path` and returns the `ExportReport` (also saved as `path.json`).

    format: "tflite" (see `export_tflite`; `options` are its keyword arguments), or
        "saved_model" / "onnx", written by Keras' `model.export` (the SavedModel on the
        TensorFlow and JAX backends, ONNX where Keras and the onnx packages allow). Those
        two take `batch=None` for a dynamic batch; with `verify` the artifact is reloaded
        (TensorFlow for a SavedModel, onnxruntime for ONNX, where installed) and compared
        with the Keras model.
    """
    if format not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}; got {format!r}")
    if format == "tflite":
        return export_tflite(model_or_path, path, batch=batch, input_size=input_size, verify=verify, **options)
    unknown = sorted(set(options) - {"normalization"})
    if unknown:
        raise ExportError(f"option(s) {unknown} apply to format='tflite' only")
    model = resolve_model(model_or_path, input_size=input_size)
    static_shape = static_input_shape(model, batch or 1, input_size)
    input_shape = (batch, *static_shape[1:])
    path = os.fspath(path)
    report = reports.ExportReport(path=path, format=format, model=model.name, batch=batch, input_shape=input_shape)
    with reports.staged(path, directory=format == "saved_model") as staged:
        started = time.perf_counter()
        _keras_export(model, staged, format, input_shape)
        report.seconds["convert"] = round(time.perf_counter() - started, 3)
        report.file_bytes = sum(
            os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(staged) for name in names
        ) if os.path.isdir(staged) else os.path.getsize(staged)
        if verify:
            images, report.sample_source = sample_inputs.synthetic_images(
                static_shape[0], static_shape, options.get("normalization", "auto")
            ), f"synthetic:{static_shape[0]}"
            exported = _reload_outputs(staged, format, images)
            if exported is not None:
                report.parity = verification.compare(exported, verification.run_keras(model, images))
                report.samples, report.verified = len(images), True
                report.runtime = "tensorflow" if format == "saved_model" else "onnxruntime"
    reports.write_report(report)
    return report
