"""A finished run hands over deployable files and a picture of its attention, next to best.keras:
model_<precision>.tflite verified in LiteRT (with int8 calibrated on training images), and
attention.png. A hand-over that cannot be made is recorded and never fails the run."""

import json

import keras
import numpy as np
import pytest

from tests.training.common import run_cli, tiny, write_toml

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TFLite export converts TensorFlow graphs"
)

ATTENTION_MODEL = {"name": "se_resnet18", "options": {"layers": [1, 1, 1, 1]}}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand_over")
    recipe = tiny(
        model=ATTENTION_MODEL,
        phases=[{"name": "full", "epochs": 1, "learning_rate": 1e-3}],
        export={"tflite": ["none", "int8"], "representative_examples": 24},
        figures={"attention": True, "images": 3},
    )
    run_dir = root / "run"
    code, _ = run_cli(["train", str(write_toml(recipe, root / "tiny.toml")), "--output", str(run_dir), "--verbose", "0"])
    return code, run_dir, json.loads((run_dir / "report.json").read_text())


def test_the_best_model_is_exported_in_each_precision_with_its_parity_report(finished_run):
    code, run_dir, report = finished_run
    assert code == 0 and report["status"] == "completed"
    float32, int8 = report["export"]["none"], report["export"]["int8"]
    assert float32["path"] == str(run_dir / "model_none.tflite") and (run_dir / "model_none.tflite").stat().st_size > 0
    assert float32["max_relative_error"] <= 1e-4
    assert json.loads((run_dir / "model_none.tflite.json").read_text())["quantize"] == "none"
    int8_report = json.loads((run_dir / "model_int8.tflite.json").read_text())
    assert int8_report["samples"] == 24, "calibrated and verified on the requested number of training images"
    assert 0.0 <= int8["top1_agreement"] <= 1.0
    assert int8["file_bytes"] < 0.5 * float32["file_bytes"]


def test_the_attention_figure_is_a_real_picture(finished_run):
    from PIL import Image

    _, run_dir, report = finished_run
    assert report["figures"]["attention"] == {"path": str(run_dir / "attention.png")}
    pixels = np.asarray(Image.open(run_dir / "attention.png").convert("RGB"), dtype="float32")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 10, "not a blank canvas"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100, "overlays in many colours, not a few flat areas"


def test_a_model_without_attention_maps_gets_no_figure_and_the_run_still_completes(tmp_path):
    recipe = tiny(phases=[{"name": "full", "epochs": 1, "learning_rate": 1e-3}], figures={"attention": True})
    code, _ = run_cli(["train", str(write_toml(recipe, tmp_path / "plain.toml")), "--output", str(tmp_path / "run"),
                       "--verbose", "0"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == 0 and report["status"] == "completed"
    assert "no attention layers" in report["figures"]["attention"]["skipped"]
    assert not (tmp_path / "run" / "attention.png").exists()


def test_a_failed_export_is_recorded_and_the_run_keeps_its_model(tmp_path, monkeypatch):
    from attention_zoo.export import ExportError
    from attention_zoo.training import deliverables

    def failing_export(model, path, **options):
        raise ExportError(f"{path}: float32 file differs from Keras by 3e-2 (tolerance 1e-4)")

    monkeypatch.setattr(deliverables, "export_tflite", failing_export)
    recipe = tiny(phases=[{"name": "full", "epochs": 1, "learning_rate": 1e-3}], export={"tflite": ["none"]})
    code, _ = run_cli(["train", str(write_toml(recipe, tmp_path / "tiny.toml")), "--output", str(tmp_path / "run"),
                       "--verbose", "0"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == 0 and report["status"] == "completed"
    assert "differs from Keras" in report["export"]["none"]["error"]
    assert (tmp_path / "run" / "best.keras").is_file()


def test_the_recipes_keep_float_reaches_the_int8_export_only(tmp_path, monkeypatch):
    from attention_zoo.export import ExportError
    from attention_zoo.training import deliverables

    calls = {}

    def recording_export(model, path, **options):
        calls[options["quantize"]] = options["keep_float"]
        raise ExportError("recorded")

    monkeypatch.setattr(deliverables, "export_tflite", recording_export)
    recipe = tiny(
        phases=[{"name": "full", "epochs": 1, "learning_rate": 1e-3}],
        export={"tflite": ["none", "int8"], "keep_float": "spatial_transformer/sampler, head"},
        figures={"attention": False},
    )
    code, _ = run_cli(["train", str(write_toml(recipe, tmp_path / "r.toml")), "--output", str(tmp_path / "run"),
                       "--verbose", "0"])
    assert code == 0
    assert calls == {"none": None, "int8": ["spatial_transformer/sampler", "head"]}


def test_an_unknown_precision_is_a_recipe_error(tmp_path):
    recipe = tiny(export={"tflite": ["int4"]})
    code, output = run_cli(["train", str(write_toml(recipe, tmp_path / "bad.toml")), "--output", str(tmp_path / "run")])
    assert code == 2
    assert "export.tflite" in output and "int4" in output
