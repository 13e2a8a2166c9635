"""`export_model`: one entry point for LiteRT, SavedModel and ONNX."""

import importlib.util
import os
import time
import warnings

import keras
import numpy as np

from attention_zoo.export import report as reports
from attention_zoo.export import samples as sample_inputs
from attention_zoo.export import verify as verification
from attention_zoo.export.errors import ExportError
from attention_zoo.export.source import resolve_model, static_input_shape
from attention_zoo.export.tflite import export_tflite
from attention_zoo.layers.tracing import plain_graph

FORMATS = ("tflite", "saved_model", "onnx")
# Keras' names for the formats it writes itself.
_KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx"}
# What Keras' ONNX export imports on each backend that writes files onnxruntime runs
# (tf2onnx on TensorFlow, torch.onnx on PyTorch; both serialise through `onnx`).
ONNX_PACKAGES = {"tensorflow": ("tf2onnx", "onnx"), "torch": ("onnx",)}
ONNX_RUNTIME = "onnxruntime"


def require_onnx(verify=True):
    """Raises an ExportError unless this backend and the installed packages can write (and,
    with `verify`, run) an ONNX file; checked before any model is built or file written."""
    backend = keras.backend.backend()
    if backend not in ONNX_PACKAGES:
        # Keras 3.15 converts JAX through jax2onnx, whose pooling (jax2onnx 0.17) onnxruntime
        # rejects ("Unsupported pooling size"), and has no ONNX route on other backends.
        raise ExportError(
            f"ONNX export needs the TensorFlow or PyTorch backend; Keras runs on {backend!r}. Set "
            "KERAS_BACKEND=tensorflow (or torch) before Python starts (a .keras file saved on any backend loads there)."
        )
    needed = ONNX_PACKAGES[backend] + ((ONNX_RUNTIME,) if verify else ())
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        hint = " (or skip the check with verify=False / --no-verify)" if missing == [ONNX_RUNTIME] else ""
        raise ExportError(
            f"ONNX export on the {backend} backend needs {', '.join(missing)}, which is not installed: "
            f"pip install 'attention_zoo[onnx]'{hint}"
        )


def _keras_export(model, staged, format, input_shape):
    try:
        with warnings.catch_warnings(), plain_graph():
            # torch.onnx traces the model once at the export shape; its warnings that Python
            # values become constants are expected, and verification runs the traced graph.
            warnings.filterwarnings("ignore", message=".*might cause the trace to be incorrect")
            model.export(
                staged,
                format=_KERAS_FORMATS[format],
                input_signature=[keras.InputSpec(shape=input_shape, dtype="float32")],
                verbose=False,
            )
    except ImportError as error:
        extra = " (pip install 'attention_zoo[onnx]')" if format == "onnx" else ""
        raise ExportError(f"{format} export needs a package that is not installed{extra}: {error}") from None
    except (NotImplementedError, ValueError, RuntimeError) as error:
        # RuntimeError: torch.onnx's errors (an operator it cannot translate) derive from it.
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
        import onnxruntime  # require_onnx has checked it is there

        try:
            session = onnxruntime.InferenceSession(staged, providers=["CPUExecutionProvider"])
            served = session.run(None, {session.get_inputs()[0].name: images})
        except Exception as error:  # onnxruntime's errors derive from Exception only
            raise ExportError(f"onnxruntime cannot run the exported file: {error}") from None
    return [np.asarray(tensor, dtype="float32") for tensor in keras.tree.flatten(served)]


def export_model(model_or_path, path, *, format="tflite", batch=1, input_size=None, verify=True, **options):
    """Exports to `format` at `path` and returns the `ExportReport` (also saved as `path.json`).

    format: "tflite" (see `export_tflite`; `options` are its keyword arguments), or
        "saved_model" / "onnx", written by Keras' `model.export` (the SavedModel on the
        TensorFlow and JAX backends; ONNX on TensorFlow through tf2onnx and on PyTorch
        through torch.onnx, with `pip install 'attention_zoo[onnx]'`). Those two take
        `batch=None` for a dynamic batch; with `verify` the artifact is reloaded
        (TensorFlow for a SavedModel, onnxruntime for ONNX) and must match the Keras model
        to a relative error of `verify.FLOAT32_TOLERANCE`, or a ParityError is raised and
        nothing is written.
    """
    if format not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}; got {format!r}")
    if format == "tflite":
        return export_tflite(model_or_path, path, batch=batch, input_size=input_size, verify=verify, **options)
    unknown = sorted(set(options) - {"normalization"})
    if unknown:
        raise ExportError(f"option(s) {unknown} apply to format='tflite' only")
    if format == "onnx":
        require_onnx(verify)
    model = resolve_model(model_or_path, input_size=input_size)
    static_shape = static_input_shape(model, batch or 1, input_size)
    input_shape = (batch, *static_shape[1:])
    path = os.fspath(path)
    backend = keras.backend.backend()
    packages = (backend, *ONNX_PACKAGES[backend], ONNX_RUNTIME) if format == "onnx" else (backend,)
    report = reports.ExportReport(
        path=path, format=format, model=model.name, batch=batch, input_shape=input_shape,
        versions=reports.package_versions(*packages),
    )
    with reports.staged(path, directory=format == "saved_model") as staged:
        started = time.perf_counter()
        _keras_export(model, staged, format, input_shape)
        report.seconds["convert"] = round(time.perf_counter() - started, 3)
        report.file_bytes = sum(
            os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(staged) for name in names
        ) if os.path.isdir(staged) else os.path.getsize(staged)
        if verify:
            # A dynamic batch is checked at 2, not at the batch of 1 the exporter traced with.
            count = static_shape[0] if batch else 2
            images, report.sample_source = sample_inputs.synthetic_images(
                count, static_shape, options.get("normalization", "auto")
            ), f"synthetic:{count}"
            started = time.perf_counter()
            exported = _reload_outputs(staged, format, images)
            if exported is not None:
                report.parity = verification.compare(exported, verification.run_keras(model, images))
                report.seconds["verify"] = round(time.perf_counter() - started, 3)
                report.samples, report.verified = len(images), True
                report.runtime = "tensorflow" if format == "saved_model" else "onnxruntime"
                verification.require_float_parity(report, f"the {format} export")
    reports.write_report(report)
    return report
