import os

import keras
import pytest


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with default dtype policy and fresh layer names."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.clear_session()
    yield
    keras.mixed_precision.set_global_policy("float32")


def pytest_collection_modifyitems(config, items):
    # Layers are specified on every backend; families mark their own modules `every_backend`.
    for item in items:
        if "tests/layers/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.every_backend)
    if os.environ.get("ATTENTION_ZOO_ONLY_FAST"):
        skip = pytest.mark.skip(reason="ATTENTION_ZOO_ONLY_FAST set")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
