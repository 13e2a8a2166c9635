"""Every registered model exports to a float32 LiteRT file with builtin ops only, and the
file computes what the Keras model computes (relative error at most 1e-4), and LiteRT's CPU
delegate (XNNPACK) takes it whole unless its attention indexes data.

Each model is exported once, at the smallest input its architecture takes, so that the whole
zoo converts in CI; the large ResNets are marked slow (still part of the default suite). A
ResNet is exported as registered (1000 classes, any input size) at 32x32: the model that its
contract and MAC tests read, built once for all three.
"""

import os

import pytest

import attention_zoo
from attention_zoo.export import export_tflite
from tests.helpers import RESNETS, randomize_weights, registered_model, shares_registered_model

# Smallest convenient input per model (32 px = the ResNets' total stride); the small
# families run at their paper size, which is small already.
INPUT_SIZES = {
    "attention_unet": 32,
    "cnn_cluttered": 60,
    "stn_cnn": 60,
    "dcn": 100,
    "dcn_coarse": 100,
    "dcn_fine": 100,
    "ram": 60,
    "ram_mnist28": 28,
}
OPTIONS = {"stn_classifier": {"classifier": "resnet18"}}
# Attention by data-dependent indexing (a sampler's gathers, glimpse crops, top-k patches) has
# no XNNPACK kernels and runs on LiteRT's own; every other model is one XNNPACK partition.
INDEXING_MODELS = {"stn_cnn", "stn_classifier", "dcn", "ram", "ram_mnist28"}
# More than 40 M parameters: 35 s to 1.5 min each to export on two cores.
LARGE = {name for name in attention_zoo.list_models() if any(tag in name for tag in ("101", "152", "senet154"))}
LARGE |= {"attention92"}


def _cases():
    for name in attention_zoo.list_models():
        marks = [pytest.mark.slow] if name in LARGE else []
        if name in RESNETS:
            marks.append(shares_registered_model(name))
        yield pytest.param(name, marks=marks, id=name)


def build(name):
    """The model to export and the input size to export it at (None: the size it was built at)."""
    size = INPUT_SIZES.get(name, 32)
    if name in RESNETS:
        return registered_model(name), size
    info = attention_zoo.model_info(name)
    model = attention_zoo.get(
        name, num_classes=10, input_shape=(size, size, info.input_channels), **OPTIONS.get(name, {})
    )
    if info.family == "recurrent_attention":
        # A randomly initialised RAM is chaotic in its inputs: rounding differences grow glimpse
        # by glimpse (Keras alone, batch 4 against batch 1, differs by 50 %). Small weights make
        # the recurrence contract, so parity measures the export rather than the chaos.
        randomize_weights(model, scale=0.05)
    return model, None


@pytest.mark.parametrize("name", _cases())
def test_exports_to_float32_litert_with_builtin_ops_and_parity(name, export_dir):
    model, input_size = build(name)
    path = export_dir / f"{name}.tflite"

    report = export_tflite(model, path, input_size=input_size)

    assert report.verified and report.runtime == "ai_edge_litert"
    assert report.max_relative_error <= 1e-4
    assert report.samples == 2 and report.input_shape[0] == 1
    assert input_size is None or report.input_shape[1:3] == (input_size, input_size)
    assert not any(op == "CUSTOM" or op.startswith("FLEX") for op in report.ops)
    assert report.file_bytes == os.path.getsize(path)
    assert sorted(os.listdir(export_dir)) == [f"{name}.tflite", f"{name}.tflite.json"]
    if name not in INDEXING_MODELS:
        assert report.delegation == {"partitions": 1, "undelegated_ops": {}}


def test_every_registered_model_is_covered():
    """New models join the parametrisation by registering; sizes refer to real names."""
    assert set(INPUT_SIZES) | set(OPTIONS) | INDEXING_MODELS <= set(attention_zoo.list_models())
