import functools
import os

import keras
import pytest


def _keep_keras_saving_skipsets():
    """Keras 3.15 stores the set of attributes that saving skips under one global key and
    reads it back under another ("saving_attr_skipset_*" vs "saving_attr_skiplist_*"), so each
    `.keras` save and load builds the set again for every object it walks, instantiating a
    Layer each time: 2.5 of the 9.7 s of saving se_resnet101 under cProfile, 2.6 of the 19 s
    of loading it. The set depends on the object's type alone, and the suite saves and loads
    hundreds of models, so it keeps the sets as Keras means to. The package itself does not
    patch Keras."""
    try:
        from keras.src.saving import saving_lib
    except ImportError:  # another Keras layout: nothing to keep
        return
    skipset = getattr(saving_lib, "get_attr_skipset", None)
    if skipset is not None and not hasattr(skipset, "cache_info"):
        saving_lib.get_attr_skipset = functools.cache(skipset)


_keep_keras_saving_skipsets()


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
