"""The one generic trainer behind every recipe.

    from attention_zoo.training import train
    report = train("recipes/quickstart.toml", overrides=["training.batch_size=16"])

What a run does, phase by phase (`[[phases]]` in the recipe):
- a frozen phase trains only `model.head` (default: the classifier `fc`); every other layer is
  non-trainable, which in Keras also keeps its BatchNorm layers in inference mode;
- an unfrozen phase trains everything; each phase has its own optimizer and learning-rate
  schedule (linear warm-up from 0, then cosine decay), so phase 2 starts at its own, lower
  learning rate with fresh optimizer moments, as fine-tuning practice has it.

The run directory holds everything: `checkpoint/` (the last good epoch: weights with the
optimizer state, and `state.json` with the epoch counter and phase), `best.keras` (the best
model by the monitored metric), `history.csv`, `logs/` (TensorBoard) and `report.json` (the
machine-readable record: recipe, resolved settings, per-epoch metrics, final evaluation,
timings, artifact paths). Running the same command again resumes from the checkpoint: a
killed run loses at most the epoch in progress. An epoch whose loss is NaN or infinite
stops the run (Keras' TerminateOnNaN) and is never checkpointed: the last good checkpoint
and best model stay.
"""

import datetime
import json
import math
import os
import pathlib
import shutil
import time
import warnings

import keras
import numpy as np

import attention_zoo
from attention_zoo import data as zoo_data
from attention_zoo.export import selective
from attention_zoo.training import deliverables
from attention_zoo.training import distribution as zoo_distribution
from attention_zoo.training import metrics as zoo_metrics
from attention_zoo.training.recipe import Recipe, RecipeError, load
from attention_zoo.training.tensorboard import EpochScalars

REPORT_FORMAT = "attention_zoo.training.report/1"
# Settings that may change between a run and its resumption without changing what is trained.
RESUME_NEUTRAL = {("training", "verbose"), ("output",)}


class TrainingError(ValueError):
    pass


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _jsonable(value):
    """Python/NumPy values -> JSON values; NaN and infinities become null (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def _write_json(path, payload):
    tmp = pathlib.Path(f"{path}.tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2, allow_nan=False))
    os.replace(tmp, path)


class RunDirectory:
    """Paths of a run's artifacts."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.checkpoint_dir = self.root / "checkpoint"
        self.last_weights = self.checkpoint_dir / "last.weights.h5"
        self.state = self.checkpoint_dir / "state.json"
        self.best_model = self.root / "best.keras"
        self.report = self.root / "report.json"
        self.csv = self.root / "history.csv"
        self.logs = self.root / "logs"
        self.attention_figure = self.root / "attention.png"

    def read_state(self):
        if self.state.is_file() and self.last_weights.is_file():
            return json.loads(self.state.read_text())
        return None

    def read_report(self):
        return json.loads(self.report.read_text()) if self.report.is_file() else None

    def clear(self):
        for path in (self.checkpoint_dir, self.logs):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.best_model, self.report, self.csv, self.attention_figure, *self.root.glob("model_*.tflite*")):
            if path.exists():
                path.unlink()

    def artifacts(self):
        return {
            "run_dir": str(self.root),
            "report": str(self.report),
            "best_model": str(self.best_model),
            "last_checkpoint": str(self.last_weights),
            "checkpoint_state": str(self.state),
            "csv_log": str(self.csv),
            "tensorboard": str(self.logs),
            "attention_figure": str(self.attention_figure),
            "tflite": str(self.root / "model_<precision>.tflite"),
        }


def _save_weights_atomically(model, path):
    # Keras insists on the ".weights.h5" suffix; write next to the target, then rename.
    tmp = path.with_name(f"{path.name[: -len('.weights.h5')]}-partial.weights.h5")
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, path)


def _save_model_atomically(model, path):
    tmp = path.with_name(f"{path.stem}-partial.keras")
    model.save(tmp, overwrite=True)
    os.replace(tmp, path)


# Data.


class Data:
    """The recipe's datasets, batched for fit/evaluate, and what they are."""

    def __init__(self, settings, replicas=1, drop_remainder=False, splits=None):
        started = time.perf_counter()
        data, task = settings["data"], settings["task"]
        self.task = task
        self.batch_size = settings["training"]["batch_size"]
        if self.batch_size % replicas:
            raise RecipeError(
                f"training.batch_size={self.batch_size} must be divisible by the {replicas} devices of the distribution"
            )
        self.one_hot = task == "classification" or settings["training"]["label_smoothing"] > 0
        self.augmentation = zoo_data.Augmentation(**settings["augment"])
        self._settings = settings
        self._drop_remainder = drop_remainder
        wanted = splits if splits is not None else ["train", "validation"]
        self.sources, self.batches = {}, {}
        for role in wanted:
            split = self.split_name(role)
            if split:
                self.sources[role] = self._load(split, shuffle_files=role == "train")
                self.batches[role] = self._batch(self.sources[role], training=role == "train")
        self.info = next(iter(self.sources.values())).info if self.sources else None
        self.seconds = time.perf_counter() - started

    def split_name(self, role):
        data = self._settings["data"]
        return {"train": data["train_split"], "validation": data["validation_split"], "test": data["test_split"]}.get(role, role)

    def _load(self, split, shuffle_files=False):
        s, data = self._settings, self._settings["data"]
        return zoo_data.load(
            data["source"],
            data["name"],
            split=split,
            task=s["task"],
            seed=s["seed"],
            image_size=data["image_size"],
            channels=data["channels"],
            options=data["options"],
            path=data["path"],
            data_dir=data["data_dir"],
            download=data["download"],
            validation_fraction=data["validation_fraction"],
            num_classes=data["num_classes"],
            class_names=data["class_names"],
            mask_values=data["mask_values"],
            shuffle_files=shuffle_files,
        )

    def _batch(self, source, training):
        s, data = self._settings, self._settings["data"]
        return zoo_data.pipeline.build(
            source.dataset,
            task=s["task"],
            image_size=data["image_size"],
            channels=data["channels"],
            num_classes=source.info.num_classes,
            batch_size=self.batch_size,
            training=training,
            augmentation=self.augmentation,
            normalization=data["normalization"],
            resize=data["resize"],
            one_hot=self.one_hot,
            shuffle_buffer=data["shuffle_buffer"],
            cache=data["cache"],
            drop_remainder=self._drop_remainder,
            seed=s["seed"],
        )

    def batches_for(self, split):
        """Batches of any split by name (evaluation of splits the run did not train on)."""
        source = self._load(split)
        return self._batch(source, training=False), source.info

    def steps(self, role):
        examples = self.sources[role].info.num_examples
        if examples is None:
            return None
        rounding = math.floor if self._drop_remainder else math.ceil
        return max(1, rounding(examples / self.batch_size))


# Model.


def _weights_by_layer(model):
    return {layer.name: layer for layer in model.layers}


def load_pretrained(model, path, settings, input_shape):
    """Initialises `model` from a `.keras` model or a `.weights.h5` file.

    Weights of the same architecture load directly. Otherwise layers are matched by name and
    weight shapes, so a checkpoint with another number of classes (or without a head)
    initialises everything but the head. Returns what was loaded and what was skipped.
    """
    path = pathlib.Path(os.path.expanduser(path))
    if not path.is_file():
        raise RecipeError(f"model.weights: {str(path)!r} is not a file")
    if path.name.endswith(".weights.h5"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a partial load warns: treat it as a mismatch
                model.load_weights(path)
            return {"source": str(path), "loaded": "all", "skipped": []}
        except Exception:
            source = attention_zoo.get(settings["model"]["name"], include_top=False, input_shape=input_shape,
                                       **settings["model"]["options"])
            try:
                source.load_weights(path)
            except Exception as error:
                raise RecipeError(
                    f"model.weights: {str(path)!r} fits neither {settings['model']['name']} nor its backbone "
                    f"(include_top=False): {error}"
                ) from error
    elif path.suffix == ".keras":
        source = keras.saving.load_model(path, compile=False)
    else:
        raise RecipeError(f"model.weights must be a .keras or .weights.h5 file; got {str(path)!r}")
    available = _weights_by_layer(source)
    loaded, skipped = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        other = available.get(layer.name)
        if other is not None and [w.shape for w in other.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(other.get_weights())
            loaded.append(layer.name)
        else:
            skipped.append(layer.name)
    if not loaded:
        raise RecipeError(f"model.weights: no layer of {str(path)!r} matches the model by name and shape")
    return {"source": str(path), "loaded": len(loaded), "skipped": skipped}


def _is_keras_file(path):
    return path.endswith(".keras") or path.endswith(".weights.h5")


def published_weights(settings):
    """What `attention_zoo.get` loads for `model.weights` when it is a published tag or a source
    checkpoint (anything but a `.keras` or `.weights.h5` file), or None."""
    weights = settings["model"]["weights"]
    if not weights or _is_keras_file(weights):
        return None
    from attention_zoo.pretrained import Weights

    return Weights(weights, allow_unverified=settings["model"]["allow_unverified"])


def check_normalization(settings, published):
    """The recipe must scale pixels the way its published weights (`published_weights`) were
    trained to see them: a mismatch trains without an error, only worse, so it is refused here,
    before any download. A checkpoint file states no preprocessing, so only tags are checked."""
    from attention_zoo.pretrained.loading import manifest_entry

    entry = manifest_entry(settings["model"]["name"], published)
    if entry is None:
        return
    preprocessing = entry.preprocessing
    wanted = zoo_data.normalization_for(preprocessing.mean, preprocessing.std)
    recipe = settings["data"]["normalization"]
    if wanted == recipe:
        return
    expected = f'set data.normalization = "{wanted}"' if wanted else "no data.normalization matches it"
    raise RecipeError(
        f"model.weights {settings['model']['weights']!r} expects pixels in [0, 1] normalised by mean "
        f"{tuple(preprocessing.mean)} and std {tuple(preprocessing.std)}; the recipe's data.normalization is "
        f"{recipe!r}: {expected}"
    )


def build_model(settings, info):
    height, width = settings["data"]["image_size"]
    input_shape = (height, width, settings["data"]["channels"])
    published = published_weights(settings)
    check_normalization(settings, published)
    model = attention_zoo.get(
        settings["model"]["name"],
        weights=published,
        num_classes=info.num_classes,
        input_shape=input_shape,
        **settings["model"]["options"],
    )
    model = _single_output(model, settings)
    if published is not None:
        loaded = model.pretrained_weights
        return model, {
            "source": loaded.source,
            "tag": loaded.tag,
            "sha256": loaded.sha256,
            "verified": loaded.verified,
            "loaded": loaded.loaded,
            "head_loaded": loaded.head_loaded,
        }
    if settings["model"]["weights"]:
        return model, load_pretrained(model, settings["model"]["weights"], settings, input_shape)
    frozen = [phase["name"] for phase in settings["phases"] if phase["freeze_backbone"] and phase["epochs"]]
    if frozen and not settings["model"]["options"].get("encoder_weights"):
        warnings.warn(
            f"phase(s) {frozen} freeze the backbone of {settings['model']['name']}, which has random weights: "
            "set model.weights (a tag such as 'imagenet', or a checkpoint) to fine-tune pretrained weights",
            stacklevel=2,
        )
    return model, None


def _single_output(model, settings):
    try:
        outputs = model.output
    except (AttributeError, ValueError):  # subclassed models without a functional graph
        outputs = None
    if isinstance(outputs, dict):
        raise RecipeError(
            f"{settings['model']['name']} returns several outputs {sorted(model.output)}; the trainer trains "
            "single-output models (turn off deep_supervision)"
        )
    return model


def set_phase_trainable(model, phase, settings):
    """Freezes the backbone for a frozen phase, unfreezes everything otherwise; returns the
    number of trainable weights."""
    model.trainable = True
    for layer in model.layers:
        layer.trainable = True
    if phase["freeze_backbone"]:
        names = {layer.name for layer in model.layers}
        backbone, head = settings["model"]["backbone"], settings["model"]["head"]
        listed = backbone or head
        missing = [name for name in listed if name not in names]
        if missing:
            which = "model.backbone" if backbone else "model.head"
            raise RecipeError(
                f"{which} names layer(s) {missing} that {model.name} does not have; its top-level layers end with "
                f"{[layer.name for layer in model.layers][-5:]}"
            )
        for layer in model.layers:
            layer.trainable = (layer.name not in backbone) if backbone else (layer.name in head)
    return len(model.trainable_weights)


def _trainable_parameters(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def make_optimizer(settings, phase, steps_per_epoch):
    opt, schedule = settings["optimizer"], settings["schedule"]
    rate = phase["learning_rate"]
    total = max(1, steps_per_epoch * phase["epochs"])
    warmup = min(int(round(schedule["warmup_epochs"] * steps_per_epoch)), total - 1)
    alpha = 1.0 if schedule["name"] == "constant" else schedule["min_lr_ratio"]
    if warmup > 0:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=total - warmup, alpha=alpha, warmup_target=rate, warmup_steps=warmup
        )
    elif schedule["name"] == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=total, alpha=alpha)
    else:
        learning_rate = rate
    clip = {"clipnorm": opt["clipnorm"]} if opt["clipnorm"] else {}
    if opt["name"] == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate, weight_decay=opt["weight_decay"], beta_1=opt["beta_1"], beta_2=opt["beta_2"], **clip
        )
    else:
        optimizer = keras.optimizers.SGD(
            learning_rate, momentum=opt["momentum"], nesterov=opt["nesterov"],
            weight_decay=opt["weight_decay"] or None, **clip
        )
    if opt["weight_decay"]:
        # Decay the weights of convolutions and dense layers, not biases or normalisation scales.
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def make_loss(settings, from_logits=True):
    smoothing = settings["training"]["label_smoothing"]
    if settings["task"] == "classification" or smoothing > 0:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def make_metrics(settings, info, one_hot):
    if settings["task"] == "classification":
        return zoo_metrics.classification_metrics(info.num_classes, one_hot)
    return zoo_metrics.segmentation_metrics(info.num_classes, info.class_names, one_hot)


def default_monitor(settings, has_validation):
    if settings["training"]["monitor"]:
        return settings["training"]["monitor"]
    metric = "accuracy" if settings["task"] == "classification" else "mean_iou"
    return f"val_{metric}" if has_validation else metric


def _jit(settings):
    return {"auto": "auto", "true": True, "false": False}[settings["training"]["jit_compile"]]


def compile_model(model, settings, info, one_hot, optimizer):
    from_logits = settings["model"]["options"].get("classifier_activation") in (None, "linear")
    model.compile(
        optimizer=optimizer,
        loss=make_loss(settings, from_logits),
        metrics=make_metrics(settings, info, one_hot),
        jit_compile=_jit(settings),
    )


# Callbacks.


def last_learning_rate(optimizer):
    """The learning rate of the optimizer's most recent step (the schedule at iterations - 1):
    what the epoch that just ended trained with last, not what the next step will use."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer wraps the real one
    schedule = getattr(inner, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        step = max(int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1, 0)
        return float(keras.ops.convert_to_numpy(schedule(step)))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class RunCheckpoint(keras.callbacks.Callback):
    """At each epoch end: the epoch's record, the last checkpoint and state, the best model.

    An epoch with a non-finite loss is recorded as such and nothing is saved, so the last good
    checkpoint and the best model survive a divergence.
    """

    def __init__(self, trainer, phase_index, phase):
        super().__init__()
        self.trainer = trainer
        self.phase_index = phase_index
        self.phase = phase
        self.diverged = False
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        trainer = self.trainer
        logs = {key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0}
        seconds = time.perf_counter() - (self._started or time.perf_counter())
        losses = [value for key, value in logs.items() if key in ("loss", "val_loss")]
        record = {
            "epoch": epoch + 1,
            "phase": self.phase["name"],
            "seconds": round(seconds, 3),
            "learning_rate": last_learning_rate(self.model.optimizer),
            "metrics": logs,
        }
        if not all(math.isfinite(value) for value in losses):
            self.diverged = True
            record["diverged"] = True
            trainer.record_epoch(record)
            return
        run = trainer.run
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        _save_weights_atomically(self.model, run.last_weights)
        state = {
            "epochs_done": epoch + 1,
            "phase_index": self.phase_index,
            "phase": self.phase["name"],
            "optimizer_iterations": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
            "best": trainer.best,
        }
        value = logs.get(trainer.monitor)
        if value is not None and trainer.improves(value):
            _save_model_atomically(self.model, run.best_model)
            trainer.best = state["best"] = {"monitor": trainer.monitor, "value": value, "epoch": epoch + 1}
        _write_json(run.state, state)
        trainer.record_epoch(record)


# The trainer.


class Trainer:
    """Runs one recipe into one run directory. `train(...)` is the short form."""

    def __init__(self, recipe, output=None, *, overrides=(), restart=False, callbacks=(), verbose=None):
        self.recipe = recipe if isinstance(recipe, Recipe) else load(recipe, overrides)
        self.settings = self.recipe.settings
        if output:
            self.settings["output"] = str(output)
        self.settings["output"] = self.settings["output"] or str(pathlib.Path("runs") / self.settings["name"])
        self.run = RunDirectory(self.settings["output"])
        self.restart = restart
        self.extra_callbacks = list(callbacks)
        self.verbose = self.settings["training"]["verbose"] if verbose is None else verbose
        self.best = None
        self.monitor = None
        self.report = None
        self._clocks = {}  # timing key -> perf_counter() up to which it is counted in the report

    # Report.

    def _start_clock(self, key, at=None):
        self._clocks[key] = time.perf_counter() if at is None else at

    def _count_time(self, key, stop=False):
        """Adds the time since the clock's last mark to `report["timings"][key]`. Called at
        every epoch, not only when a session ends, so that a run killed outright (SIGKILL,
        SIGTERM: no `finally` runs) still reports the time of the epochs it kept."""
        mark = self._clocks.pop(key, None) if stop else self._clocks.get(key)
        if mark is None:
            return
        now = time.perf_counter()
        self.report["timings"][key] = round(self.report["timings"][key] + now - mark, 3)
        if not stop:
            self._clocks[key] = now

    @staticmethod
    def _comparable(settings):
        settings = json.loads(json.dumps(settings))
        for path in RESUME_NEUTRAL:
            node = settings
            for key in path[:-1]:
                node = node.get(key, {})
            node.pop(path[-1], None)
        return settings

    def improves(self, value):
        if self.best is None:
            return True
        better = min if "loss" in self.monitor else max
        return better(value, self.best["value"]) == value and value != self.best["value"]

    def record_epoch(self, record):
        record = _jsonable(record)  # the report in memory reads like report.json: NaN is None
        self._count_time("train_seconds")
        self._count_time("total_seconds")
        epochs = [e for e in self.report["epochs"] if e["epoch"] < record["epoch"]]
        self.report["epochs"] = epochs + [record]
        self.report["best"] = self.best
        self._write_csv()
        self.write_report()

    def _write_csv(self):
        epochs = self.report["epochs"]
        keys = sorted({key for e in epochs for key in e["metrics"]})
        lines = [",".join(["epoch", "phase", "learning_rate", "seconds", *keys])]
        for e in epochs:
            values = [e["metrics"].get(k) for k in keys]
            lines.append(",".join([str(e["epoch"]), e["phase"], repr(e["learning_rate"]), repr(e["seconds"]),
                                   *("" if v is None else repr(v) for v in values)]))
        tmp = pathlib.Path(f"{self.run.csv}.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.run.csv)

    def write_report(self):
        self.report["updated"] = _now()
        _write_json(self.run.report, self.report)

    def _new_report(self):
        return {
            "format": REPORT_FORMAT,
            "name": self.settings["name"],
            "recipe": self.recipe.path,
            "overrides": list(self.recipe.overrides),
            "settings": self.settings,
            "status": "running",
            "environment": {},
            "data": {},
            "model": {},
            "phases": [],
            "epochs": [],
            "best": None,
            "evaluation": {},
            "timings": {"total_seconds": 0.0, "data_seconds": 0.0, "train_seconds": 0.0, "evaluation_seconds": 0.0},
            "sessions": [],
            "artifacts": self.run.artifacts(),
        }

    # Run.

    def _prepare_directory(self):
        state = self.run.read_state()
        previous = self.run.read_report()
        if self.restart:
            self.run.clear()
            state = previous = None
        if state is not None and previous is not None and previous.get("status") == "completed":
            if self._comparable(previous["settings"]) != self._comparable(self.settings):
                raise TrainingError(
                    f"{self.run.root} holds a completed run with different settings; choose another --output, or "
                    "pass --restart to discard it"
                )
            self.report = previous
            return "completed"
        if state is not None:
            if previous is None:
                raise TrainingError(f"{self.run.root} has a checkpoint but no report.json; rerun with --restart")
            if self._comparable(previous["settings"]) != self._comparable(self.settings):
                raise TrainingError(
                    f"{self.run.root} holds a run with different settings; resume with the same recipe and --set "
                    "values, choose another --output, or pass --restart to discard it"
                )
            self.report = previous
            self.best = state.get("best")
        else:
            if previous is not None and previous.get("status") != "completed":
                self.run.clear()  # a run that died before its first checkpoint: nothing to keep
            self.report = self._new_report()
        self.run.root.mkdir(parents=True, exist_ok=True)
        return state

    def train(self):
        """Trains (or resumes) the recipe; returns the report dict (also in report.json)."""
        session_started = time.perf_counter()
        state = self._prepare_directory()
        if state == "completed":  # the same command again: nothing left to do
            return self.report
        self._start_clock("total_seconds", at=session_started)
        epochs_done = state["epochs_done"] if state else 0
        session = {"started": _now(), "resumed_from_epoch": epochs_done, "status": "running"}
        self.report["sessions"].append(session)
        self.report["status"] = "running"
        settings = self.settings
        precision = settings["training"]["mixed_precision"]
        previous_policy = keras.mixed_precision.global_policy().name
        try:
            keras.utils.set_random_seed(settings["seed"])
            if precision != "off":
                keras.mixed_precision.set_global_policy(precision)
            dist = zoo_distribution.resolve(settings["training"]["distribution"])
            with dist.scope():
                status = self._train_in_scope(dist, state, epochs_done)
            session["status"] = status
            self.report["status"] = status
            if status in ("completed", "diverged") and self.run.best_model.is_file():
                self._final_evaluation()
        except KeyboardInterrupt:
            session["status"] = self.report["status"] = "interrupted"
            raise
        except Exception as error:
            session["status"] = self.report["status"] = "failed"
            session["error"] = f"{type(error).__name__}: {error}"
            raise
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
            session["ended"] = _now()
            self._count_time("total_seconds", stop=True)
            self.write_report()
        return self.report

    def _train_in_scope(self, dist, state, epochs_done):
        settings = self.settings
        data = Data(settings, replicas=dist.replicas, drop_remainder=dist.drop_remainder)
        self.data = data
        self.report["timings"]["data_seconds"] = round(self.report["timings"]["data_seconds"] + data.seconds, 3)
        has_validation = "validation" in data.batches
        self.monitor = default_monitor(settings, has_validation)
        steps = settings["training"]["steps_per_epoch"] or data.steps("train")
        if steps is None:
            raise RecipeError("the training split's size is unknown: set training.steps_per_epoch")
        train_batches = data.batches["train"]
        if settings["training"]["steps_per_epoch"]:
            train_batches = train_batches.repeat()
        validation_steps = settings["training"]["validation_steps"] or None
        model, pretrained = build_model(settings, data.info)
        self.model = model
        self.report["environment"] = {
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
            "attention_zoo": attention_zoo.__version__,
            "distribution": dist.describe(),
            "mixed_precision": settings["training"]["mixed_precision"],
        }
        self.report["data"] = {
            "name": data.info.name,
            "task": data.info.task,
            "num_classes": data.info.num_classes,
            "class_names": list(data.info.class_names),
            "splits": {role: data.split_name(role) for role in data.sources},
            "examples": {role: source.info.num_examples for role, source in data.sources.items()},
            "steps_per_epoch": steps,
            "batch_size": data.batch_size,
        }
        self.report["model"] = {
            "name": settings["model"]["name"],
            "parameters": int(model.count_params()),
            "pretrained": pretrained,
            "monitor": self.monitor,
        }
        # Phases finished in earlier sessions keep what those sessions measured.
        measured = {phase["name"]: phase for phase in self.report.get("phases", [])}
        self.report["phases"] = []
        offset = 0
        plan = []
        for index, phase in enumerate(settings["phases"]):
            plan.append((index, phase, offset, offset + phase["epochs"]))
            record = {key: value for key, value in measured.get(phase["name"], {}).items()
                      if key in ("trainable_weights", "trainable_parameters")}
            self.report["phases"].append(
                {**phase, "first_epoch": offset + 1, "last_epoch": offset + phase["epochs"], **record}
            )
            offset += phase["epochs"]
        restored = epochs_done == 0
        status = "completed"
        self._start_clock("train_seconds")
        try:
            for index, phase, start, end in plan:
                if phase["epochs"] == 0 or epochs_done >= end:
                    continue
                trainable = set_phase_trainable(model, phase, settings)
                self.report["phases"][index].update(
                    trainable_weights=trainable, trainable_parameters=_trainable_parameters(model)
                )
                if not restored and epochs_done == start:
                    # Resuming at a phase boundary: the weights carry over, the optimizer is new.
                    model.load_weights(self.run.last_weights)
                    restored = True
                compile_model(model, settings, data.info, data.one_hot, make_optimizer(settings, phase, steps))
                if not restored:
                    model.optimizer.build(model.trainable_variables)
                    model.load_weights(self.run.last_weights)
                    expected = state.get("optimizer_iterations")
                    got = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
                    if expected is not None and got != expected:
                        raise TrainingError(
                            f"the checkpoint's optimizer state did not load (iterations {got}, expected {expected})"
                        )
                    restored = True
                checkpoint = RunCheckpoint(self, index, phase)
                callbacks = [checkpoint, keras.callbacks.TerminateOnNaN()]
                if settings["training"]["tensorboard"]:
                    callbacks.append(EpochScalars(self.run.logs))
                callbacks.extend(self.extra_callbacks)
                self.write_report()
                model.fit(
                    train_batches,
                    validation_data=data.batches.get("validation"),
                    initial_epoch=epochs_done,
                    epochs=end,
                    steps_per_epoch=steps if settings["training"]["steps_per_epoch"] else None,
                    validation_steps=validation_steps,
                    callbacks=callbacks,
                    verbose=self.verbose,
                    shuffle=False,  # tf.data shuffles, seeded
                )
                if checkpoint.diverged:
                    status = "diverged"
                    break
                epochs_done = end
        finally:
            self._count_time("train_seconds", stop=True)
        if status == "diverged" and self.run.last_weights.is_file():
            # Put the last good weights back: the model in memory holds the diverged ones.
            model.load_weights(self.run.last_weights)
        return status

    def _final_evaluation(self):
        started = time.perf_counter()
        settings = self.settings
        splits = settings["evaluation"]["splits"] or ([settings["data"]["test_split"]] if settings["data"]["test_split"] else [])
        model = keras.saving.load_model(self.run.best_model, compile=False)
        # The saved best model may come from a frozen phase: hand it back fully trainable and
        # without optimizer state, ready for further fine-tuning or export.
        for layer in model.layers:
            layer.trainable = True
        model.trainable = True
        _save_model_atomically(model, self.run.best_model)
        results = {}
        for split in splits:
            results[split] = evaluate_model(model, settings, split, verbose=0)
        self.report["evaluation"] = results
        self.report["timings"]["evaluation_seconds"] = round(time.perf_counter() - started, 3)
        self._hand_over(model)

    def _hand_over(self, model):
        """TFLite files and the attention figure of the best model (see `deliverables`)."""
        started = time.perf_counter()
        settings = self.settings
        precisions = settings["export"]["tflite"]
        if precisions:
            calibration, _ = deliverables.examples(
                settings, settings["data"]["train_split"], settings["export"]["representative_examples"]
            )
            keep_float = selective.parse(settings["export"]["keep_float"])
            self.report["export"] = deliverables.export_best_model(
                model, self.run.root, precisions, calibration, keep_float
            )
        if settings["figures"]["attention"]:
            split = settings["data"]["validation_split"] or settings["data"]["test_split"] or settings["data"]["train_split"]
            images, _ = deliverables.examples(settings, split, settings["figures"]["images"])
            self.report["figures"] = {"attention": deliverables.save_attention_figure(model, images, self.run.attention_figure)}
        self.report["timings"]["hand_over_seconds"] = round(time.perf_counter() - started, 3)


def evaluate_model(model, settings, split, verbose=0, data=None):
    """Metrics of `model` on one split, with the recipe's preprocessing and metrics."""
    data = data or Data(settings, splits=[])
    batches, info = data.batches_for(split)
    one_hot = data.one_hot
    from_logits = settings["model"]["options"].get("classifier_activation") in (None, "linear")
    model.compile(loss=make_loss(settings, from_logits), metrics=make_metrics(settings, info, one_hot),
                  jit_compile=_jit(settings))
    results = model.evaluate(batches, verbose=verbose, return_dict=True)
    return {key: float(value) for key, value in results.items()}


def train(recipe, output=None, *, overrides=(), restart=False, callbacks=(), verbose=None):
    """Trains a recipe (a path, a recipe name from recipes/, a raw dict or a `Recipe`), resuming
    from the run directory's checkpoint if one exists. Returns the run report."""
    return Trainer(recipe, output, overrides=overrides, restart=restart, callbacks=callbacks, verbose=verbose).train()
