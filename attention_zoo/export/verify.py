"""Runs an exported file on sample inputs and compares it with the Keras model."""

import os

import keras
import numpy as np

from attention_zoo.export.errors import ExportError, ParityError

# Float32 files must agree with Keras to this max|a - b| / max|b| (read at call time, so a
# test can tighten it).
FLOAT32_TOLERANCE = 1e-4
# Keras computes the reference in chunks of this many images.
REFERENCE_CHUNK = 16


def make_interpreter(path=None, content=None, num_threads=None):
    """A LiteRT interpreter over the file (or flatbuffer bytes) and the runtime's name;
    `ai_edge_litert` is the runtime phones ship, TensorFlow's own (deprecated) one is the
    fallback. It runs on `num_threads` threads, by default every CPU: left unset, LiteRT
    (and its XNNPACK delegate) runs on one."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        runtime = "ai_edge_litert"
    except ImportError:
        import tensorflow as tf

        Interpreter, runtime = tf.lite.Interpreter, "tf.lite"
    try:
        interpreter = Interpreter(
            model_path=path, model_content=content, num_threads=num_threads or os.cpu_count() or 1
        )
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        raise ExportError(f"{runtime} cannot load the exported file: {error}") from None
    return interpreter, runtime


def delegation(interpreter):
    """How LiteRT's CPU delegate (XNNPACK) took the graph: {"partitions": the number of
    delegated subgraphs, "undelegated_ops": {op type: count} of the ops left to LiteRT's own
    kernels}. One partition and nothing undelegated is the fast case: every op left behind
    runs unaccelerated and cuts the graph, with a hand-over between runtimes at each cut."""
    # The Python API does not expose the execution plan. The ops it lists are the original
    # ones plus one DELEGATE op per partition, so an op is undelegated when it produces a
    # tensor that a partition or the graph's output reads and no partition produces, or one
    # that such an op reads.
    ops = interpreter._get_ops_details()
    partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
    delegated_outputs = {int(t) for op in partitions for t in op["outputs"]}
    producers = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    pending = {int(t) for op in partitions for t in op["inputs"]}
    pending |= {int(detail["index"]) for detail in interpreter.get_output_details()}
    undelegated, seen = {}, set()
    while pending:
        tensor = pending.pop()
        op = producers.get(tensor)
        if tensor in delegated_outputs or op is None or op["index"] in seen:
            continue
        seen.add(op["index"])
        undelegated[op["op_name"]] = undelegated.get(op["op_name"], 0) + 1
        pending |= {int(t) for t in op["inputs"] if t >= 0}
    return {"partitions": len(partitions), "undelegated_ops": dict(sorted(undelegated.items()))}


def _quantization(detail):
    scale, zero_point = detail["quantization"]
    return (float(scale), int(zero_point)) if scale else None


def tensor_summary(detail):
    summary = {
        "name": detail["name"],
        "shape": [int(size) for size in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
    }
    quantization = _quantization(detail)
    if quantization:
        summary["scale"], summary["zero_point"] = quantization
    return summary


def quantize(values, detail):
    """Float inputs -> the integer type of a quantised input tensor (identity for floats)."""
    quantization = _quantization(detail)
    dtype = np.dtype(detail["dtype"])
    if quantization is None or not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = quantization
    limits = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero_point, limits.min, limits.max).astype(dtype)


def dequantize(values, detail):
    quantization = _quantization(detail)
    if quantization is None or not np.issubdtype(values.dtype, np.integer):
        return values.astype("float32")
    scale, zero_point = quantization
    return (values.astype("float32") - zero_point) * scale


def run_file(interpreter, batches):
    """The file's outputs, in float, on each batch; concatenated along the batch per output."""
    (input_detail,) = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    results = [[] for _ in output_details]
    for images in batches:
        interpreter.set_tensor(input_detail["index"], quantize(images, input_detail))
        interpreter.invoke()
        for collected, detail in zip(results, output_details):
            collected.append(dequantize(interpreter.get_tensor(detail["index"]), detail))
    return [np.concatenate(collected) for collected in results]


def run_keras(model, images):
    outputs = []
    for start in range(0, len(images), REFERENCE_CHUNK):
        chunk = keras.tree.flatten(model(images[start:start + REFERENCE_CHUNK], training=False))
        outputs.append([keras.ops.convert_to_numpy(tensor).astype("float32") for tensor in chunk])
    return [np.concatenate(parts) for parts in zip(*outputs)]


def require_float_parity(report, artifact):
    """Raises ParityError (the export then writes nothing) when a float export, described as
    `artifact`, differs from the Keras model by more than FLOAT32_TOLERANCE."""
    report.tolerance = FLOAT32_TOLERANCE
    if report.max_relative_error > report.tolerance:
        raise ParityError(
            f"{report.model}: {artifact} differs from the Keras model by a relative error of "
            f"{report.max_relative_error:.3g} (> {report.tolerance:g}); nothing was written",
            report,
        )


def compare(exported, reference):
    """Per-output parity figures (see ExportReport.parity)."""
    if len(exported) != len(reference):
        raise ExportError(f"the exported file has {len(exported)} outputs; the Keras model has {len(reference)}")
    figures = []
    for index, (actual, expected) in enumerate(zip(exported, reference)):
        if actual.shape != expected.shape:
            raise ExportError(f"output {index}: the file gives shape {actual.shape}, Keras {expected.shape}")
        difference = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        entry = {
            "output": index,
            "shape": list(expected.shape),
            "max_abs_error": difference,
            "max_relative_error": difference / scale if scale > 0 else difference,
        }
        if expected.ndim >= 2 and expected.shape[-1] > 1:
            entry["top1_agreement"] = float(np.mean(np.argmax(actual, -1) == np.argmax(expected, -1)))
        figures.append(entry)
    return figures
