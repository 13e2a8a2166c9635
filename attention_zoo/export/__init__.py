"""Deployment formats: LiteRT (TFLite) with builtin ops only, SavedModel and ONNX.

    from attention_zoo import export
    report = export.export_tflite("cbam_resnet50", "cbam.tflite", quantize="int8",
                                  representative_data="photos/", input_size=224)
    report.top1_agreement, report.file_bytes      # also saved as cbam.tflite.json

From the shell: `attention-zoo export MODEL_OR_FILE --format tflite --quantize int8
--representative-data photos/ -o cbam.tflite`. LiteRT export converts TensorFlow graphs:
run it with KERAS_BACKEND=tensorflow (a `.keras` file trained on any backend loads there).
"""

from attention_zoo.export.errors import ExportError, ParityError, UnsupportedOpError
from attention_zoo.export.formats import FORMATS, export_model
from attention_zoo.export.report import ExportReport
from attention_zoo.export.samples import load_samples, synthetic_images
from attention_zoo.export.source import resolve_model, static_input_shape
from attention_zoo.export.tflite import INT8_IO_DTYPES, QUANTIZATIONS, convert, export_tflite
from attention_zoo.export.verify import make_interpreter

__all__ = [
    "FORMATS",
    "INT8_IO_DTYPES",
    "QUANTIZATIONS",
    "ExportError",
    "ExportReport",
    "ParityError",
    "UnsupportedOpError",
    "convert",
    "export_model",
    "export_tflite",
    "load_samples",
    "make_interpreter",
    "resolve_model",
    "static_input_shape",
    "synthetic_images",
]
