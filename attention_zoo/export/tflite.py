"""Keras model -> `.tflite` file with builtin ops only, verified in the LiteRT interpreter.

The graph is traced at a static shape (a fixed batch, 1 by default, and a fixed image size:
XNNPACK and microcontroller runtimes plan memory ahead), its weights frozen into constants,
and converted with `TFLITE_BUILTINS` (`TFLITE_BUILTINS_INT8` for full-integer int8) only: an
op that would need the Flex delegate is an error naming the op and its Keras layer, never a
silent Flex dependency. The file has one subgraph with no signature; its input and outputs
are in the Keras model's order (outputs flattened as `keras.tree.flatten` does).
"""

import os
import time
import warnings

import keras
import numpy as np

from attention_zoo.export import ops as op_names
from attention_zoo.export import report as reports
from attention_zoo.export import samples as sample_inputs
from attention_zoo.export import selective
from attention_zoo.export import verify as verification
from attention_zoo.export.errors import ExportError, UnsupportedOpError
from attention_zoo.export.freezing import converter_class
from attention_zoo.export.source import require_tensorflow, resolve_model, static_input_shape
from attention_zoo.layers.tracing import plain_graph

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
INT8_IO_DTYPES = ("int8", "uint8", "float32")
# Inputs that verify a float export when no representative data is given.
VERIFY_BATCHES = 2


def _serving_function(model, input_shape):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.float32, name="images")])
    def serve(images):
        return keras.tree.flatten(model(images, training=False))

    return serve.get_concrete_function()


def _converter(model, input_shape, quantize, calibration, io_dtype, clamp_infinities=False):
    import tensorflow as tf

    converter = converter_class().from_concrete_functions([_serving_function(model, input_shape)], model)
    # The converter freezes the weights into the graph and converts it directly: through a
    # temporary SavedModel (the default) it takes twice as long, for a SignatureDef.
    converter.experimental_lower_to_saved_model = False
    # LiteRT's default pass that replaces infinite constants by the largest finite float reads
    # every weight one element at a time: a fifth of a ResNet-101's conversion. `convert` runs
    # it only for a graph that has an infinite constant.
    converter.canonicalizing_inf_as_min_max_float = clamp_infinities
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: ([images] for images in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, io_dtype)
        converter.inference_output_type = getattr(tf, io_dtype)
    return converter


def convert(model, input_shape, quantize="none", calibration=None, io_dtype="int8", float_layers=()):
    """The flatbuffer bytes; raises UnsupportedOpError for ops outside the builtin set.
    `float_layers`: paths of layers whose ops stay float32 in an int8 file."""
    from tensorflow.lite.python.convert_phase import ConverterError

    try:
        content = _convert_once(model, input_shape, quantize, calibration, io_dtype, float_layers, False)
        if op_names.infinite_constants(content):
            # Without infinite constants the clamping pass changes nothing, so the bytes are
            # those of LiteRT's default conversion; with them, convert again as LiteRT would.
            content = _convert_once(model, input_shape, quantize, calibration, io_dtype, float_layers, True)
    except ConverterError as error:
        unsupported = op_names.converter_unsupported_ops(error)
        if unsupported:
            located, sentence = op_names.describe_ops(unsupported, model)
            raise UnsupportedOpError(
                f"{model.name} needs TensorFlow ops that LiteRT has no builtin kernel for: {sentence}. "
                "Only TFLITE_BUILTINS are allowed (a Flex op would not run on phones or microcontrollers "
                "without the Flex delegate); rewrite the layer with keras.ops that convert.",
                located,
            ) from None
        first_errors = "; ".join(data.error_message.split("\n")[0] for data in (error.errors or [])[:3])
        raise ExportError(f"converting {model.name} ({quantize}) failed: {first_errors or error}") from None
    builtins, custom = op_names.flatbuffer_ops(content)
    if custom:
        located, sentence = op_names.describe_ops(custom, model)
        raise UnsupportedOpError(f"{model.name} converted with non-builtin (custom or Flex) ops: {sentence}", located)
    return content, builtins


def _convert_once(model, input_shape, quantize, calibration, io_dtype, float_layers, clamp_infinities):
    with warnings.catch_warnings(), plain_graph():
        # Calibration provides the input statistics; the converter warns before it runs.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        converter = _converter(model, input_shape, quantize, calibration, io_dtype, clamp_infinities)
        if not float_layers:
            return converter.convert()
        float_converter = _converter(model, input_shape, "none", None, None, clamp_infinities)
        return selective.quantize_keeping_float(converter, float_converter, float_layers, io_dtype)


def _check_arguments(path, quantize, io_dtype, keep_float):
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize must be one of {QUANTIZATIONS}; got {quantize!r}")
    if keep_float and quantize != "int8":
        raise ExportError(f"keep_float applies to quantize='int8' only; got quantize={quantize!r}")
    if quantize == "int8" and io_dtype not in INT8_IO_DTYPES:
        raise ExportError(f"io_dtype must be one of {INT8_IO_DTYPES} for int8; got {io_dtype!r}")
    if quantize != "int8" and io_dtype not in (None, "float32"):
        raise ExportError(f"io_dtype={io_dtype!r} applies to quantize='int8' only")
    if not os.fspath(path).endswith(".tflite"):
        raise ExportError(f"the LiteRT file name must end with .tflite; got {os.fspath(path)!r}")


def _sample_images(representative_data, input_shape, quantize, normalization):
    if representative_data is not None:
        return sample_inputs.load_samples(representative_data, input_shape, normalization=normalization)
    if quantize == "int8":
        raise ExportError(
            "quantize='int8' calibrates on representative_data: pass images like the model's real inputs (a "
            "directory of images or a .npy array); 'synthetic:N' calibrates on random images, which "
            "usually costs accuracy"
        )
    count = VERIFY_BATCHES * input_shape[0]
    return sample_inputs.synthetic_images(count, input_shape, normalization), f"synthetic:{count}"


def _verify(report, model, staged, batches, quantize):
    interpreter, report.runtime = verification.make_interpreter(staged)
    report.delegation = verification.delegation(interpreter)
    report.inputs = [verification.tensor_summary(d) for d in interpreter.get_input_details()]
    report.outputs = [verification.tensor_summary(d) for d in interpreter.get_output_details()]
    if not batches:
        return
    started = time.perf_counter()
    exported = verification.run_file(interpreter, batches)
    reference = verification.run_keras(model, np.concatenate(batches))
    report.parity = verification.compare(exported, reference)
    report.seconds["verify"] = round(time.perf_counter() - started, 3)
    report.verified = True
    if quantize == "none":
        verification.require_float_parity(report, "the float32 file")


def export_tflite(
    model_or_path,
    path,
    *,
    quantize="none",
    representative_data=None,
    batch=1,
    input_size=None,
    io_dtype=None,
    keep_float=None,
    normalization="auto",
    verify=True,
):
    """Writes `path` (.tflite) and `path.json` (the report); returns the `ExportReport`.

    model_or_path: a Keras model, a `.keras` file or a registered name (built at
        `input_size`, default its paper size, with 1000 classes; use `resolve_model` for more).
    quantize: "none" (float32; the file must match Keras to a relative error of 1e-4, else
        the export fails), "float16" (float16 weights, float compute), "dynamic" (int8
        weights, float activations) or "int8" (full integer: every op int8, calibrated on
        `representative_data`, which it requires).
    representative_data: an array (N, H, W, C), a `.npy` file, a directory of images
        (normalised with `normalization`, as the training recipes do) or "synthetic:N".
        It calibrates int8 and is what the file is verified on; without it, float exports
        are verified on deterministic random images.
    batch, input_size: the file's static input shape is (batch, input_size, input_size, C);
        input_size is needed only for models built for any size.
    io_dtype: for int8, the type of the file's input and output: "int8" (default, what
        microcontroller runtimes take), "uint8", or "float32" (quantise inside the file).
        The report's `inputs` / `outputs` carry each tensor's scale and zero point.
    keep_float: for int8, layers whose ops stay float32 (LiteRT converts at their
        boundaries; all ops stay builtins): "auto" for the sublayers the model's layers
        declare int8-sensitive (a spatial transformer's theta regression and sampler), or
        layer paths below the model such as "spatial_transformer/sampler". The report's
        `float_layers` lists them. io_dtype must then be "int8" or "float32".
    normalization: how images from a directory and generated images are scaled: "auto"
        ("imagenet" for RGB models, "unit" for grayscale ones, as the zoo's recipes),
        "imagenet", "unit" or "none".
    verify: run the file in the LiteRT interpreter and report parity (int8: the top-1
        agreement with the float Keras model, and the error of each output).

    A failed export (unsupported op, conversion error, parity failure) raises an
    `ExportError` and writes nothing: no partial file, and a file already at `path` stays.
    """
    require_tensorflow("TFLite export")
    io_dtype = io_dtype or ("int8" if quantize == "int8" else None)
    _check_arguments(path, quantize, io_dtype, keep_float)
    model = resolve_model(model_or_path, input_size=input_size)
    float_layers = selective.resolve(model, keep_float)
    input_shape = static_input_shape(model, batch, input_size)
    images, origin = _sample_images(representative_data, input_shape, quantize, normalization)
    batches = sample_inputs.batches(images, batch)

    path = os.fspath(path)
    report = reports.ExportReport(
        path=path, format="tflite", model=model.name, quantize=quantize, batch=batch, input_shape=input_shape,
        samples=len(batches) * batch if verify else 0, sample_source=origin if verify else "",
        versions=reports.package_versions("tensorflow", "ai_edge_litert"),
        float_layers=float_layers,
    )
    started = time.perf_counter()
    content, report.ops = convert(model, input_shape, quantize, batches, io_dtype, float_layers)
    report.seconds["convert"] = round(time.perf_counter() - started, 3)
    report.file_bytes = len(content)

    with reports.staged(path) as staged:
        with open(staged, "wb") as handle:
            handle.write(content)
        _verify(report, model, staged, batches if verify else [], quantize)
    reports.write_report(report)
    return report
