import sys

import pytest

# Keeps the torchvision operator schemas registered for the whole session (see import_timm).
_TORCHVISION_SCHEMAS = []


def import_timm():
    """timm and torch, or a skip naming what to install when either is missing.

    Where only a CPU torch wheel exists, torchvision's compiled operators fail to load against
    it ("operator torchvision::nms does not exist") and `import timm` fails with them. timm's
    models never call those operators: registering their two schemas lets the import finish.
    """
    try:
        import torch
    except ImportError:
        pytest.skip("parity tests need torch: pip install torch==2.13.0 (CPU) and pip install -e '.[parity]'")
    try:
        import timm
    except ImportError as error:
        pytest.skip(f"parity tests need timm and torchvision (pip install -e '.[parity]'): {error}")
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
        for name in [name for name in sys.modules if name.split(".")[0] in ("torchvision", "timm")]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "DEF")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS.append(library)
        import timm
    return timm, torch


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test downloads into its own cache and starts without the allow-unverified switch."""
    directory = tmp_path / "keras_cache"
    monkeypatch.setenv("ATTENTION_ZOO_CACHE_DIR", str(directory))
    monkeypatch.delenv("ATTENTION_ZOO_ALLOW_UNVERIFIED", raising=False)
    return directory / "attention_zoo"


@pytest.fixture
def registered():
    """`register(model, tag, **entry)` adds manifest entries that are removed after the test."""
    from attention_zoo import pretrained

    added = []

    def register(model, tag, **fields):
        fields.setdefault("license", "test")
        entry = pretrained.register_weights(model, tag, **fields)
        added.append((model, tag))
        return entry

    yield register
    for model, tag in added:
        pretrained.unregister_weights(model, tag)
