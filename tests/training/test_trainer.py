"""The generic trainer: two-phase fine-tuning, checkpoints and resumption, the run report,
divergence, segmentation and mixed precision. Each test trains a tiny model for seconds."""

import csv
import json
import math
import pathlib

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.training import Trainer, train
from attention_zoo.training.recipe import RecipeError
from attention_zoo.training.trainer import set_phase_trainable
from tests.training.common import TINY_MODEL, run_cli, tiny


class Probe(keras.callbacks.Callback):
    """Per fit (= per phase): trainable weights and whether frozen and trained parts moved."""

    def __init__(self):
        super().__init__()
        self.phases = []

    def _snapshot(self):
        model = self.model
        norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
        convs = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
        return {
            "moving_mean": keras.ops.convert_to_numpy(norms[0].moving_mean).copy(),
            "conv": keras.ops.convert_to_numpy(convs[0].kernel).copy(),
            "fc": keras.ops.convert_to_numpy(model.get_layer("fc").kernel).copy(),
        }

    def on_train_begin(self, logs=None):
        self._before = self._snapshot()
        self.phases.append({"trainable": len(self.model.trainable_weights)})

    def on_train_end(self, logs=None):
        after = self._snapshot()
        self.phases[-1].update({key: not np.array_equal(after[key], self._before[key]) for key in after})


def test_a_frozen_phase_trains_only_the_head_and_keeps_batchnorm_in_inference_mode(tmp_path):
    # ResNet-18 (one block per stage): BatchNorm everywhere, the classifier `fc` on top.
    probe = Probe()
    raw = tiny(
        model={"name": "resnet18", "options": {"layers": [1, 1, 1, 1]}},
        data={"name": "shapes", "channels": 3, "options": {"train": 32, "size": 32}, "validation_split": "",
              "test_split": ""},
        phases=[{"name": "head", "epochs": 1, "learning_rate": 1e-2, "freeze_backbone": True}],
    )
    trainer = Trainer(raw, tmp_path / "run", callbacks=[probe])
    report = trainer.train()
    (head,) = probe.phases
    assert head["trainable"] == 2 and report["phases"][0]["trainable_weights"] == 2  # fc kernel and bias
    assert report["phases"][0]["trainable_parameters"] == 512 * 5 + 5
    assert head["fc"] and not head["conv"] and not head["moving_mean"]  # BatchNorm statistics untouched
    # An unfrozen phase makes everything trainable again, nested layers included.
    fresh = attention_zoo.get("resnet18", num_classes=5, input_shape=(32, 32, 3), layers=(1, 1, 1, 1))
    assert set_phase_trainable(trainer.model, {"freeze_backbone": False}, trainer.settings) == len(fresh.trainable_weights)
    norms = [layer for layer in trainer.model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.trainable for layer in norms)


def test_a_killed_run_resumes_from_its_last_checkpoint_with_the_same_command(resumed_run):
    codes, run_dir, _, states, reports = resumed_run
    assert codes == [130, 130, 0]
    # Killed at the start of epoch 2 (phase 2's first): epoch 1 and phase 1 are kept.
    assert states[0]["epochs_done"] == 1 and states[0]["phase"] == "head"
    assert reports[0]["status"] == "interrupted" and len(reports[0]["epochs"]) == 1
    # Killed at the start of epoch 3: epoch 2 ran in phase 2 on a new optimizer (2 steps).
    assert states[1]["epochs_done"] == 2 and states[1]["phase"] == "full" and states[1]["optimizer_iterations"] == 2
    # The last session restored phase 2's optimizer (2 steps) and ran 2 more: its state continued.
    assert states[2]["epochs_done"] == 3 and states[2]["optimizer_iterations"] == 4
    final = reports[2]
    assert final["status"] == "completed"
    # Phase 1 trained the head (fc kernel and bias), phase 2 every weight.
    fresh = attention_zoo.get(TINY_MODEL["name"], num_classes=10, input_shape=(32, 32, 1), **TINY_MODEL["options"])
    assert [phase["trainable_weights"] for phase in final["phases"]] == [2, len(fresh.trainable_weights)]
    assert [e["epoch"] for e in final["epochs"]] == [1, 2, 3]
    assert [e["phase"] for e in final["epochs"]] == ["head", "full", "full"]
    assert [s["resumed_from_epoch"] for s in final["sessions"]] == [0, 1, 2]
    assert [s["status"] for s in final["sessions"]] == ["interrupted", "interrupted", "completed"]
    with open(run_dir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert float(rows[2]["val_loss"]) == pytest.approx(final["epochs"][2]["metrics"]["val_loss"])


def test_the_same_command_after_completion_does_nothing(resumed_run):
    _, run_dir, argv, _, reports = resumed_run
    code, _ = run_cli(argv)
    again = json.loads((run_dir / "report.json").read_text())
    assert code == 0 and len(again["sessions"]) == 3 and again["epochs"] == reports[2]["epochs"]


def test_the_report_records_recipe_settings_epochs_evaluation_timings_and_artifacts(resumed_run):
    _, run_dir, _, _, reports = resumed_run
    report = reports[2]
    assert report["format"] == "attention_zoo.training.report/1"
    assert report["recipe"].endswith("tiny.toml") and report["overrides"] == ["training.batch_size=16"]
    settings = report["settings"]
    assert settings["model"]["name"] == TINY_MODEL["name"] and settings["training"]["label_smoothing"] == 0.1
    assert settings["schedule"]["warmup_epochs"] == 0.5 and settings["optimizer"]["name"] == "adamw"  # defaults resolved
    assert report["data"]["num_classes"] == 10 and report["data"]["examples"] == {"train": 32, "validation": 16}
    assert report["data"]["steps_per_epoch"] == 2
    assert report["environment"]["backend"] == keras.backend.backend()
    assert report["model"]["monitor"] == "val_accuracy"
    for epoch in report["epochs"]:
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epoch["metrics"])
        assert epoch["seconds"] > 0 and epoch["learning_rate"] >= 0
    best = max(report["epochs"], key=lambda e: e["metrics"]["val_accuracy"])
    assert report["best"]["value"] == best["metrics"]["val_accuracy"]
    assert set(report["evaluation"]) == {"test"} and 0 <= report["evaluation"]["test"]["accuracy"] <= 1
    timings = report["timings"]
    assert timings["total_seconds"] >= timings["train_seconds"] > 0 and timings["evaluation_seconds"] > 0
    assert report["artifacts"]["run_dir"] == str(run_dir)
    for key in ("report", "best_model", "last_checkpoint", "checkpoint_state", "csv_log", "tensorboard"):
        assert pathlib.Path(report["artifacts"][key]).exists()
    assert list((run_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "logs" / "validation").glob("events.out.tfevents.*"))
    # The best model is saved fully trainable and without optimizer state, ready to fine-tune.
    model = keras.saving.load_model(run_dir / "best.keras")
    assert all(layer.trainable for layer in model.layers) and getattr(model, "optimizer", None) is None


class ReportOnDisk(keras.callbacks.Callback):
    """report.json as a run killed outright (no `finally`) would leave it after each epoch."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.reports = []

    def on_epoch_end(self, epoch, logs=None):
        self.reports.append(json.loads(self.path.read_text()))


def test_the_report_on_disk_counts_the_time_of_every_epoch_it_keeps(tmp_path):
    # A run killed by SIGKILL keeps the report of its last epoch: its timings must count that
    # session's epochs, or a resumed run under-reports its training time.
    on_disk = ReportOnDisk(tmp_path / "run" / "report.json")
    report = Trainer(tiny(), tmp_path / "run", callbacks=[on_disk]).train()
    for kept in on_disk.reports:
        epoch_seconds = sum(epoch["seconds"] for epoch in kept["epochs"])
        assert kept["timings"]["train_seconds"] >= epoch_seconds > 0
        assert kept["timings"]["total_seconds"] >= kept["timings"]["train_seconds"]
    counted = [kept["timings"]["train_seconds"] for kept in on_disk.reports]
    assert len(counted) == 3 and counted == sorted(counted)
    assert report["timings"]["train_seconds"] >= counted[-1]


def test_resuming_with_other_settings_is_refused(resumed_run):
    _, run_dir, argv, _, _ = resumed_run
    code, out = run_cli(argv + ["--set", "phases.1.learning_rate=1e-2"])
    assert code == 2 and "different settings" in out and "--restart" in out


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    # An infinite learning rate turns every weight into inf/NaN at the first step of epoch 2.
    raw = tiny(
        data={"validation_split": "", "test_split": ""},
        phases=[
            {"name": "good", "epochs": 1, "learning_rate": 1e-3},
            {"name": "explodes", "epochs": 2, "learning_rate": float("inf")},
        ],
    )
    trainer = Trainer(raw, tmp_path / "run")
    report = trainer.train()
    assert report["status"] == "diverged"
    # TerminateOnNaN stopped epoch 2 at its first non-finite batch; epoch 3 never ran.
    assert [e["epoch"] for e in report["epochs"]] == [1, 2] and report["epochs"][1]["diverged"]
    assert report["epochs"][1]["metrics"]["loss"] is None  # NaN is null in strict JSON
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["epochs_done"] == 1 and report["best"]["epoch"] == 1
    # The checkpoint, the best model and the model in memory all hold epoch 1's finite weights.
    checkpoint = attention_zoo.get(TINY_MODEL["name"], num_classes=10, input_shape=(32, 32, 1), **TINY_MODEL["options"])
    checkpoint.load_weights(tmp_path / "run" / "checkpoint" / "last.weights.h5")
    best = keras.saving.load_model(tmp_path / "run" / "best.keras")
    for model in (trainer.model, best, checkpoint):
        assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)
    for mine, saved in zip(trainer.model.weights, checkpoint.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(saved))


def test_segmentation_trains_with_mean_iou_and_dice_per_class(tmp_path):
    raw = tiny(
        task="segmentation",
        model={"name": "attention_unet", "options": {"base_filters": 4, "depth": 2}},
        data={"name": "shape_segmentation", "channels": 3, "image_size": [32, 32], "validation_split": "",
              "options": {"train": 16, "test": 8, "size": 32}},
        augment={"flip": "horizontal"},
        training={"batch_size": 8},
        phases=[{"name": "train", "epochs": 1, "learning_rate": 1e-3}],
    )
    report = train(raw, tmp_path / "run")
    metrics = report["epochs"][0]["metrics"]
    classes = ("background", "circle", "square", "triangle")
    assert {"loss", "mean_iou", "dice"} | {f"dice_{name}" for name in classes} <= set(metrics)
    assert report["best"]["monitor"] == "mean_iou"  # val_mean_iou where there is a validation split
    # The final evaluation reloads best.keras: the segmentation model and its metrics round-trip.
    test = report["evaluation"]["test"]
    assert 0 <= test["mean_iou"] <= 1 and {f"dice_{name}" for name in classes} <= set(test)


def test_mixed_precision_is_a_flag_that_trains_correctly_and_is_undone(tmp_path):
    raw = tiny(training={"mixed_precision": "mixed_float16"}, data={"validation_split": "", "test_split": ""},
               phases=[{"name": "one", "epochs": 1, "learning_rate": 1e-3}])
    trainer = Trainer(raw, tmp_path / "run")
    report = trainer.train()
    assert trainer.model.dtype_policy.name == "mixed_float16"
    assert report["status"] == "completed" and math.isfinite(report["epochs"][0]["metrics"]["loss"])
    assert keras.mixed_precision.global_policy().name == "float32"


def test_freezing_a_model_without_the_named_head_is_a_clear_error(tmp_path):
    raw = tiny(model={**TINY_MODEL, "head": ["classifier"]})
    with pytest.raises(RecipeError, match="model.head names layer\\(s\\) \\['classifier'\\]"):
        train(raw, tmp_path / "run")


def test_pretrained_weights_initialise_every_layer_but_a_head_of_another_size(tmp_path):
    from attention_zoo.training.trainer import load_pretrained

    shape = (32, 32, 1)
    source = attention_zoo.get(TINY_MODEL["name"], num_classes=10, input_shape=shape, **TINY_MODEL["options"])
    source.save(tmp_path / "pretrained.keras")
    headless = attention_zoo.get(TINY_MODEL["name"], include_top=False, input_shape=shape, **TINY_MODEL["options"])
    headless.set_weights(source.get_weights()[: len(headless.weights)])
    headless.save_weights(tmp_path / "backbone.weights.h5")
    settings = tiny()
    headless_names = {layer.name for layer in headless.layers if layer.weights}
    for path, provided in ((tmp_path / "pretrained.keras", None), (tmp_path / "backbone.weights.h5", headless_names)):
        target = attention_zoo.get(TINY_MODEL["name"], num_classes=5, input_shape=shape, **TINY_MODEL["options"])
        result = load_pretrained(target, str(path), settings, shape)
        with_weights = [layer.name for layer in target.layers if layer.weights]
        expected = [name for name in with_weights if name != "fc" and (provided is None or name in provided)]
        assert result["loaded"] == len(expected) >= 1
        assert result["skipped"] == [name for name in with_weights if name not in expected]
        assert "fc" in result["skipped"]
        for name in expected:
            for mine, theirs in zip(target.get_layer(name).weights, source.get_layer(name).weights):
                np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
    with pytest.raises(RecipeError, match="is not a file"):
        load_pretrained(target, str(tmp_path / "missing.keras"), settings, shape)


# A small ResNet-18 (one block per stage) on the 5-class embedded shapes, as a user fine-tunes
# an ImageNet ResNet on their own classes.
RESNET = {"name": "resnet18", "options": {"layers": [1, 1, 1, 1]}}
SHAPES = {"name": "shapes", "channels": 3, "normalization": "imagenet", "options": {"train": 32, "size": 32},
          "validation_split": "", "test_split": ""}


@pytest.fixture
def published_resnet(tmp_path, monkeypatch):
    """A randomised 10-class ResNet-18, published as a timm-layout .safetensors under the
    verified tag "test_published" (a file:// download with ImageNet preprocessing)."""
    from attention_zoo import pretrained
    from tests.pretrained.fakes import randomize, save_safetensors, sha256_of, timm_state_dict

    monkeypatch.setenv("ATTENTION_ZOO_CACHE_DIR", str(tmp_path / "cache"))
    source = randomize(attention_zoo.get("resnet18", num_classes=10, input_shape=(32, 32, 3), layers=(1, 1, 1, 1)))
    path = save_safetensors(timm_state_dict(source), tmp_path / "model.safetensors")
    pretrained.register_weights(
        "resnet18", "test_published", url=path.as_uri(), file_format="safetensors", converter="timm",
        license="test", sha256=sha256_of(path), num_classes=10,
    )
    yield source
    pretrained.unregister_weights("resnet18", "test_published")


def test_a_published_tag_in_model_weights_is_downloaded_verified_and_fine_tuned_with_a_new_head(
    tmp_path, published_resnet
):
    from attention_zoo.training.recipe import load
    from attention_zoo.training.trainer import build_model

    raw = tiny(model={**RESNET, "weights": "test_published"}, data=SHAPES,
               phases=[{"name": "head", "epochs": 1, "learning_rate": 1e-2, "freeze_backbone": True}])
    info = attention_zoo.data.DatasetInfo("shapes", "classification", 5, tuple("abcde"), 3)
    model, loaded = build_model(load(raw).settings, info)
    assert loaded["tag"] == "test_published" and loaded["verified"] and not loaded["head_loaded"]
    assert loaded["source"].startswith("file://") and len(loaded["sha256"]) == 64
    # Every layer but the new 5-class head holds the published weights.
    assert model.get_layer("fc").kernel.shape == (512, 5)
    for layer in model.layers:
        if layer.weights and layer.name != "fc":
            for mine, theirs in zip(layer.weights, published_resnet.get_layer(layer.name).weights):
                np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
    report = train(raw, tmp_path / "run")
    assert report["status"] == "completed" and report["model"]["pretrained"] == loaded


def test_weights_that_expect_other_pixel_scaling_than_the_recipe_are_refused(tmp_path, published_resnet):
    raw = tiny(model={**RESNET, "weights": "test_published"}, data={**SHAPES, "normalization": "unit"})
    with pytest.raises(RecipeError, match=r"expects pixels in \[0, 1\] normalised by mean .*"
                                          r'set data.normalization = "imagenet"'):
        train(raw, tmp_path / "run")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(path.is_file() for path in cache.rglob("*"))  # refused before downloading


def test_an_unknown_tag_in_model_weights_names_the_tags_there_are(tmp_path, published_resnet):
    raw = tiny(model={**RESNET, "weights": "no_such_tag"}, data=SHAPES)
    with pytest.raises(ValueError, match="unknown weights tag 'no_such_tag'.*'test_published'"):
        train(raw, tmp_path / "run")


def test_a_tag_without_a_published_checksum_needs_allow_unverified(tmp_path, published_resnet):
    from attention_zoo import pretrained

    entry = pretrained.available_weights("resnet18")["test_published"]
    pretrained.register_weights("resnet18", "test_unverified", url=entry.url, file_format="safetensors",
                                converter="timm", license="test", num_classes=10)
    try:
        raw = tiny(model={**RESNET, "weights": "test_unverified"}, data=SHAPES,
                   phases=[{"name": "head", "epochs": 1, "learning_rate": 1e-2, "freeze_backbone": True}])
        with pytest.raises(ValueError, match="publishes no SHA-256 checksum"):
            train(raw, tmp_path / "refused")
        raw["model"]["allow_unverified"] = True
        report = train(raw, tmp_path / "run")
        assert report["status"] == "completed" and not report["model"]["pretrained"]["verified"]
    finally:
        pretrained.unregister_weights("resnet18", "test_unverified")


def test_freezing_a_backbone_that_has_random_weights_warns(tmp_path):
    from attention_zoo.training.recipe import load
    from attention_zoo.training.trainer import build_model

    info = attention_zoo.data.DatasetInfo("x", "classification", 5, tuple("abcde"), 1)
    with pytest.warns(UserWarning, match=r"phase\(s\) \['head'\] freeze the backbone .* random weights"):
        build_model(load(tiny()).settings, info)
