"""Selective int8: the ops of chosen Keras layers stay float32 in an otherwise int8 file.

Some computations lose too much in int8. A spatial transformer's sampling coordinates span
the whole image, so 256 levels give quarter-pixel steps, and a classifier behind the sampler
changes its answer on a few percent of images. Keeping those few ops in float (LiteRT adds
the quantize / dequantize ops at the boundaries; every op is still a builtin) restores the
agreement while the convolutions and dense layers, nearly all the weights and MACs, stay int8.

Layers are named by their path of layer names below the model, e.g.
"spatial_transformer/sampler"; a layer class lists its own sensitive sublayers in
`INT8_SENSITIVE_SUBLAYERS`, which `keep_float="auto"` collects. In the converted graph an op
belongs to a layer when that layer's name scope (Keras adds "_<n>" suffixes) is in the op's
output tensor name.
"""

import re
import warnings

from attention_zoo.export.errors import ExportError
from attention_zoo.export.verify import make_interpreter

AUTO = "auto"


def _walk(layer, prefix=()):
    """(path, layer) for every layer below `layer`, depth first."""
    for child in layer._flatten_layers(include_self=False, recursive=False):
        path = (*prefix, child.name)
        yield path, child
        yield from _walk(child, path)


def sensitive_layers(model):
    """Paths of the sublayers that the model's layers declare int8-sensitive."""
    paths = []
    for path, layer in _walk(model):
        for name in getattr(layer, "INT8_SENSITIVE_SUBLAYERS", ()):
            paths.append("/".join((*path, name)))
    return paths


def parse(text):
    """The command-line and recipe form: "auto" -> "auto", "a/b, c" -> ["a/b", "c"],
    "" or None -> None (full integer)."""
    if not text:
        return None
    if text.strip() == AUTO:
        return AUTO
    return [path.strip() for path in text.split(",") if path.strip()]


def resolve(model, keep_float):
    """`keep_float` (None, "auto", a path or a list of paths) -> the list of layer paths,
    each checked to exist in the model."""
    if keep_float is None:
        return []
    if keep_float == AUTO:
        return sensitive_layers(model)
    requested = [keep_float] if isinstance(keep_float, str) else list(keep_float)
    known = {"/".join(path) for path, _ in _walk(model)}
    unknown = [path for path in requested if path not in known]
    if unknown:
        # A bare layer name most often means the layer of that name deeper in the model.
        hints = sorted(known_path for known_path in known for path in unknown if known_path.endswith("/" + path))
        raise ExportError(
            f"keep_float names layers that {model.name} does not have: {unknown}. Name layers by their path "
            f"below the model ({'did you mean ' + ', '.join(hints) if hints else 'e.g. ' + ', '.join(sorted(known)[:5])}"
            "), or pass keep_float='auto'"
        )
    return requested


def _scope_pattern(path):
    # "a/b" matches the scopes ".../a_3/b/...", "a/b_1/..." and so on, never "xa/b".
    parts = [re.escape(name) + r"(?:_\d+)?" for name in path.split("/")]
    return re.compile(r"(?:^|/)" + "/".join(parts) + r"/")


def float_tensor_names(tensor_names, paths):
    """The tensors (named as in the float graph) that the ops of `paths` write."""
    patterns = [_scope_pattern(path) for path in paths]
    # Fused ops are named after every op they fuse, joined by ";".
    return [
        name
        for name in tensor_names
        if any(pattern.search(part) for pattern in patterns for part in name.split(";"))
    ]


def quantize_keeping_float(converter, float_converter, paths, io_dtype):
    """Calibrates and quantises through `converter` (set up for int8) but leaves the ops of
    `paths` in float32; returns the flatbuffer bytes. `float_converter` converts the same
    graph without quantisation: its tensor names locate the ops of `paths`."""
    import tensorflow as tf

    if io_dtype not in ("int8", "float32"):
        raise ExportError(f"keep_float supports io_dtype 'int8' or 'float32'; got {io_dtype!r}")
    interpreter, _ = make_interpreter(content=float_converter.convert())
    names = float_tensor_names([detail["name"] for detail in interpreter.get_tensor_details()], paths)
    if not names:
        raise ExportError(f"no ops of the layers {paths} are in the converted graph; nothing would stay float")
    # Float ops need the float kernels next to the int8 ones.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=names, fully_quantize=io_dtype == "int8"
    )
    # The debugger is LiteRT's public entry to calibration with a denylist; its instrumented
    # model is not used.
    with warnings.catch_warnings():
        # It loads its instrumented model in TensorFlow's deprecated interpreter.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
        )
    return debugger.get_nondebug_quantized_model()
