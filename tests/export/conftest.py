import keras
import pytest

# LiteRT export converts TensorFlow graphs: the module is TensorFlow-only by design (on the
# other backends it raises a clear error, tested with a patched backend name).
collect_ignore_glob = [] if keras.backend.backend() == "tensorflow" else ["test_*.py"]


@pytest.fixture
def export_dir(tmp_path):
    """A directory for exported files, emptied afterwards: a float32 ResNet-50 file is 100 MB
    and pytest keeps the temporary directories of recent runs."""
    yield tmp_path
    for path in tmp_path.rglob("*.tflite"):
        path.unlink()
