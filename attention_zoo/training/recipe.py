"""Recipes: declarative TOML files that say what to train, on what, and how.

A recipe is validated against `SCHEMA` when it is read: every key is known, every value has
the declared type, and defaults fill the rest, so the trainer works with one complete,
checked dict (`Recipe.settings`). `--set key=value` overrides use dotted paths
(`training.batch_size=16`, `phases.1.learning_rate=1e-5`, `model.options.drop_rate=0.2`) and
TOML value syntax (`data.image_size=[64, 64]`, `augment.flip="horizontal"`; a bare word is a
string), checked the same way.

See recipes/README.md for the format, section by section.
"""

import copy
import dataclasses
import difflib
import json
import os
import pathlib

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from attention_zoo.export.tflite import QUANTIZATIONS

TASKS = ("classification", "segmentation")
TFLITE_PRECISIONS = QUANTIZATIONS
RECIPES_DIR = pathlib.Path(__file__).resolve().parents[2] / "recipes"


class RecipeError(ValueError):
    """A recipe or override that does not fit the schema."""


@dataclasses.dataclass(frozen=True)
class Field:
    type: str  # "str", "int", "float", "bool", "int_list", "str_list", "float_list", "list", "dict"
    default: object = None
    help: str = ""
    choices: tuple = ()
    minimum: float = None
    required: bool = False


# The complete recipe schema: section -> key -> Field; "phases" is a list of PHASE tables.
SCHEMA = {
    "": {
        "name": Field("str", "", "run name; default: the recipe file's stem"),
        "description": Field("str", ""),
        "task": Field("str", "classification", choices=TASKS),
        "seed": Field("int", 0, "seeds Python, NumPy and the backend (keras.utils.set_random_seed) and the data", minimum=0),
        "output": Field("str", "", "run directory; default runs/<name>; --output overrides"),
    },
    "model": {
        "name": Field("str", required=True, help="a registered model, see `attention-zoo list`"),
        "options": Field("dict", {}, "family overrides passed to attention_zoo.get, e.g. {drop_rate = 0.2}"),
        "weights": Field("str", "", "pretrained weights: a published tag ('imagenet' or one of "
                         "`attention-zoo info MODEL`'s tags, downloaded, verified and converted) or a source checkpoint "
                         "(.safetensors, .pth), loaded with a new head for the recipe's classes; or a .keras model or "
                         ".weights.h5 file, whose layers are matched by name and shape, so a checkpoint with another "
                         "head size still initialises the backbone"),
        "allow_unverified": Field("bool", False, "load a published tag whose publisher states no checksum"),
        "head": Field("str_list", ["fc"], "layers trained while the backbone is frozen"),
        "backbone": Field("str_list", [], "layers to freeze in frozen phases; default: every layer except `head`"),
    },
    "data": {
        "source": Field("str", "synthetic", choices=("synthetic", "tfds", "folder")),
        "name": Field("str", "", "tfds or embedded dataset name"),
        "path": Field("str", "", "folder source: the image folder"),
        "data_dir": Field("str", "", "tfds data directory (default: tfds' own)"),
        "download": Field("bool", True, "tfds: download if not prepared"),
        "train_split": Field("str", "train"),
        "validation_split": Field("str", "validation", "'' for no validation"),
        "test_split": Field("str", "test", "split of the final evaluation; '' for none"),
        "validation_fraction": Field("float", 0.0, "folders without split sub-folders: held-out fraction", minimum=0.0),
        "image_size": Field("int_list", [224, 224], "[height, width]"),
        "channels": Field("int", 3, choices=(1, 3)),
        "resize": Field("str", "stretch", choices=("stretch", "crop")),
        "normalization": Field("str", "imagenet", choices=("imagenet", "unit", "none")),
        "num_classes": Field("int", 0, "segmentation folders: number of classes (others know theirs)", minimum=0),
        "class_names": Field("str_list", []),
        "mask_values": Field("int_list", [], "segmentation folders: raw mask value of class 0, 1, ..."),
        "options": Field("dict", {}, "embedded datasets: generator options and split sizes {train = 1000, ...}"),
        "shuffle_buffer": Field("int", 1024, minimum=0),
        "cache": Field("bool", True, "cache decoded, resized images in memory"),
    },
    "augment": {
        "flip": Field("str", "none", choices=("none", "horizontal", "vertical", "horizontal_and_vertical")),
        "rotation": Field("float", 0.0, "fraction of a full turn", minimum=0.0),
        "zoom": Field("float", 0.0, minimum=0.0),
        "translation": Field("float", 0.0, minimum=0.0),
        "brightness": Field("float", 0.0, minimum=0.0),
        "contrast": Field("float", 0.0, minimum=0.0),
    },
    "optimizer": {
        "name": Field("str", "adamw", choices=("adamw", "sgd")),
        "weight_decay": Field("float", 0.05, minimum=0.0),
        "momentum": Field("float", 0.9, "sgd", minimum=0.0),
        "nesterov": Field("bool", False, "sgd"),
        "beta_1": Field("float", 0.9, "adamw", minimum=0.0),
        "beta_2": Field("float", 0.999, "adamw", minimum=0.0),
        "clipnorm": Field("float", 0.0, "0: no clipping", minimum=0.0),
    },
    "schedule": {
        "name": Field("str", "cosine", choices=("cosine", "constant")),
        "warmup_epochs": Field("float", 0.0, "linear warm-up from 0 at the start of each phase", minimum=0.0),
        "min_lr_ratio": Field("float", 0.0, "cosine floor as a fraction of the phase's learning rate", minimum=0.0),
    },
    "training": {
        "batch_size": Field("int", 32, "global batch size (over all devices)", minimum=1),
        "label_smoothing": Field("float", 0.0, minimum=0.0),
        "mixed_precision": Field("str", "off", choices=("off", "mixed_float16", "mixed_bfloat16")),
        "distribution": Field("str", "none", choices=("none", "auto", "mirrored", "multi_worker_mirrored", "data_parallel")),
        "steps_per_epoch": Field("int", 0, "0: the whole training split", minimum=0),
        "validation_steps": Field("int", 0, "0: the whole validation split", minimum=0),
        "monitor": Field("str", "", "metric that picks the best model; default val_accuracy / val_mean_iou"),
        "jit_compile": Field("str", "auto", choices=("auto", "true", "false")),
        "verbose": Field("int", 1, "Keras progress: 0 silent, 1 progress bar, 2 one line per epoch", choices=(0, 1, 2)),
        "tensorboard": Field("bool", True),
    },
    "evaluation": {
        "splits": Field("str_list", [], "splits of the final evaluation; default [data.test_split]"),
    },
    "export": {
        "tflite": Field("str_list", ["none", "int8"], "TFLite files of the best model written at the end of a run "
                        "(TF backend): none (float32), float16, dynamic, int8; [] for none"),
        "keep_float": Field("str", "", "int8 only: layers whose ops stay float32, 'auto' (those the model "
                            "declares int8-sensitive) or comma-separated layer paths; '' for full integer"),
        "representative_examples": Field("int", 256, "training images (unaugmented) that calibrate int8 and "
                                         "verify every file", minimum=1),
    },
    "figures": {
        "attention": Field("bool", True, "attention.png: the best model's attention on validation images"),
        "images": Field("int", 4, "images in the attention figure", minimum=1),
    },
}

PHASE = {
    "name": Field("str", "", "default: phase<N>"),
    "epochs": Field("int", required=True, minimum=0),
    "learning_rate": Field("float", required=True, minimum=0.0),
    "freeze_backbone": Field("bool", False, "train only model.head; BatchNorm stays in inference mode"),
}

SECTION_NAMES = [name for name in SCHEMA if name] + ["phases"]


def _closest(key, candidates):
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_error(where, field, value):
    expected = {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "int_list": "a list of integers, e.g. [64, 64]",
        "str_list": "a list of strings, e.g. [\"fc\"]",
        "dict": "a table, e.g. {key = value}",
    }[field.type]
    return RecipeError(f"{where} must be {expected}; got {value!r} ({type(value).__name__})")


def _check_value(where, field, value):
    kind = field.type
    if kind == "str":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int_list":
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif kind == "str_list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind == "dict":
        ok = isinstance(value, dict)
    else:  # pragma: no cover - schema bug
        raise AssertionError(kind)
    if not ok:
        raise _type_error(where, field, value)
    if field.choices and value not in field.choices:
        raise RecipeError(f"{where} must be one of {', '.join(map(repr, field.choices))}; got {value!r}" + _closest(str(value), map(str, field.choices)))
    if field.minimum is not None and isinstance(value, (int, float)) and value < field.minimum:
        raise RecipeError(f"{where} must be at least {field.minimum}; got {value!r}")
    return copy.deepcopy(value)


def _check_table(where, table, schema):
    if not isinstance(table, dict):
        raise RecipeError(f"{where or 'the recipe'} must be a table; got {table!r}")
    out = {}
    for key, value in table.items():
        path = f"{where}.{key}" if where else key
        if key not in schema:
            raise RecipeError(f"unknown key '{path}'{_closest(key, schema)}; valid keys here: {', '.join(schema)}")
        out[key] = _check_value(path, schema[key], value)
    for key, field in schema.items():
        if key not in out:
            if field.required:
                raise RecipeError(f"missing required key '{where + '.' if where else ''}{key}' ({field.help or field.type})")
            out[key] = copy.deepcopy(field.default)
    return out


def validate(raw):
    """A raw recipe dict -> the complete, checked settings dict (defaults filled in)."""
    if not isinstance(raw, dict):
        raise RecipeError("a recipe is a TOML table")
    raw = copy.deepcopy(raw)
    unknown = [key for key in raw if key not in SCHEMA[""] and key not in SECTION_NAMES]
    if unknown:
        valid = list(SCHEMA[""]) + SECTION_NAMES
        raise RecipeError(f"unknown key '{unknown[0]}'{_closest(unknown[0], valid)}; top-level keys: {', '.join(valid)}")
    settings = _check_table("", {k: v for k, v in raw.items() if k in SCHEMA[""]}, SCHEMA[""])
    for section in SCHEMA:
        if section:
            settings[section] = _check_table(section, raw.get(section, {}), SCHEMA[section])
    phases = raw.get("phases")
    if not isinstance(phases, list) or not phases:
        raise RecipeError("a recipe needs at least one [[phases]] table with epochs and learning_rate")
    settings["phases"] = []
    for index, phase in enumerate(phases):
        checked = _check_table(f"phases.{index}", phase, PHASE)
        checked["name"] = checked["name"] or f"phase{index + 1}"
        settings["phases"].append(checked)
    _check_consistency(settings)
    return settings


def _check_consistency(settings):
    data, task = settings["data"], settings["task"]
    if len(data["image_size"]) != 2 or min(data["image_size"]) < 1:
        raise RecipeError(f"data.image_size must be [height, width] with positive sizes; got {data['image_size']}")
    if data["source"] in ("synthetic", "tfds") and not data["name"]:
        raise RecipeError(f"data.name is required for data.source = {data['source']!r}")
    if not data["train_split"]:
        raise RecipeError("data.train_split is required")
    if not 0 <= data["validation_fraction"] < 1:
        raise RecipeError(f"data.validation_fraction must be in [0, 1); got {data['validation_fraction']}")
    if settings["training"]["label_smoothing"] >= 1:
        raise RecipeError("training.label_smoothing must be below 1")
    if sum(phase["epochs"] for phase in settings["phases"]) < 1:
        raise RecipeError("the phases train for 0 epochs in total")
    names = [phase["name"] for phase in settings["phases"]]
    if len(set(names)) != len(names):
        raise RecipeError(f"phase names must differ; got {names}")
    unknown = [kind for kind in settings["export"]["tflite"] if kind not in TFLITE_PRECISIONS]
    if unknown:
        raise RecipeError(f"export.tflite: unknown precision {unknown[0]!r}; expected some of {list(TFLITE_PRECISIONS)}")
    if task not in TASKS:  # pragma: no cover - checked by choices
        raise RecipeError(task)


def parse_value(text):
    """TOML value syntax for --set (`16`, `1e-4`, `true`, `[64, 64]`, `{a = 1}`, `"s"`); any
    other text is a plain string, so `--set model.name=se_resnet50` needs no quotes."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw, overrides):
    """Applies `["key.path=value", ...]` to a raw recipe dict (before validation)."""
    raw = copy.deepcopy(raw)
    for item in overrides or ():
        if "=" not in item:
            raise RecipeError(f"--set expects key=value; got {item!r}")
        path, text = item.split("=", 1)
        keys = [key.strip() for key in path.strip().split(".")]
        if not all(keys):
            raise RecipeError(f"--set: bad key path {path!r}")
        _set_path(raw, keys, parse_value(text.strip()), path.strip())
    return raw


def _set_path(raw, keys, value, path):
    head = keys[0]
    if head == "phases":
        phases = raw.get("phases") or []
        if len(keys) < 3 or not keys[1].isdigit():
            raise RecipeError(f"--set {path}: address a phase by its index, e.g. phases.0.epochs=3")
        index = int(keys[1])
        if index >= len(phases):
            raise RecipeError(f"--set {path}: the recipe has {len(phases)} phase(s) (indices 0..{len(phases) - 1})")
        table, schema, rest = phases[index], PHASE, keys[2:]
        where = f"phases.{index}"
    elif len(keys) == 1:
        table, schema, rest, where = raw, SCHEMA[""], keys, ""
        if head in SECTION_NAMES:
            raise RecipeError(f"--set {path}: '{head}' is a section; set one of its keys, e.g. {head}.<key>=...")
    else:
        if head not in SCHEMA or not head:
            raise RecipeError(f"--set {path}: unknown section '{head}'{_closest(head, SECTION_NAMES)}; sections: {', '.join(SECTION_NAMES)}")
        table, schema, rest, where = raw.setdefault(head, {}), SCHEMA[head], keys[1:], head
    key = rest[0]
    full = f"{where}.{key}" if where else key
    if key not in schema:
        raise RecipeError(f"--set {path}: unknown key '{full}'{_closest(key, schema)}; valid keys: {', '.join(schema)}")
    field = schema[key]
    if len(rest) > 1:
        if field.type != "dict":
            raise RecipeError(f"--set {path}: '{full}' is not a table")
        node = table.setdefault(key, {})
        for part in rest[1:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value
        return
    if field.type == "str" and not isinstance(value, str):
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if field.type == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    table[key] = _check_value(full, field, value)


@dataclasses.dataclass
class Recipe:
    """A validated recipe: `settings` is complete (defaults filled in) and JSON-serialisable."""

    settings: dict
    path: str = ""
    overrides: tuple = ()

    @property
    def name(self):
        return self.settings["name"]

    def to_json(self):
        return json.dumps(self.settings, indent=2, sort_keys=True)


def find(recipe):
    """A recipe path, or the name of a recipe in the repository's recipes/ folder."""
    path = pathlib.Path(os.path.expanduser(str(recipe)))
    if path.is_file():
        return path
    for candidate in (pathlib.Path("recipes") / f"{recipe}.toml", RECIPES_DIR / f"{recipe}.toml", RECIPES_DIR / str(recipe)):
        if candidate.is_file():
            return candidate
    available = sorted(p.stem for p in RECIPES_DIR.glob("*.toml")) if RECIPES_DIR.is_dir() else []
    raise RecipeError(
        f"no recipe {str(recipe)!r}: not a file, and not in {RECIPES_DIR}"
        + (f"; available: {', '.join(available)}" if available else "")
        + _closest(str(recipe), available)
    )


def load(recipe, overrides=()):
    """Reads, overrides and validates a recipe file (or a dict of raw settings)."""
    if isinstance(recipe, dict):
        raw, path = recipe, ""
    else:
        path = find(recipe)
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise RecipeError(f"{path}: not valid TOML: {error}") from error
    raw = apply_overrides(raw, overrides)
    if not raw.get("name"):
        raw["name"] = pathlib.Path(path).stem if path else "run"
    settings = validate(raw)
    return Recipe(settings=settings, path=str(path), overrides=tuple(overrides or ()))
