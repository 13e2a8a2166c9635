import pathlib

import keras
import pytest

# LiteRT export converts TensorFlow graphs: those modules are TensorFlow-only by design (on the
# other backends they raise a clear error, tested with a patched backend name). ONNX exports on
# TensorFlow and PyTorch and refuses JAX with a message, so test_onnx.py runs on every backend.
collect_ignore = [] if keras.backend.backend() == "tensorflow" else [
    path.name for path in pathlib.Path(__file__).parent.glob("test_*.py") if path.name != "test_onnx.py"
]


@pytest.fixture
def export_dir(tmp_path):
    """A directory for exported files, emptied afterwards: a float32 ResNet-50 file is 100 MB
    and pytest keeps the temporary directories of recent runs."""
    yield tmp_path
    for pattern in ("*.tflite", "*.onnx"):
        for path in tmp_path.rglob(pattern):
            path.unlink()
