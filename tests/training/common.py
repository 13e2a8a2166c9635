"""Tiny recipes for the trainer tests: a few dozen embedded examples and a small zoo model,
so a whole run takes seconds."""

import argparse
import contextlib
import copy
import io

import attention_zoo
from attention_zoo.training.commands import add_commands

# The STN paper's plain CNN is the zoo's smallest classifier with an `fc` head; the ResNet-18
# with one block per stage stands in where that family is absent.
if "cnn_cluttered" in attention_zoo.list_models():
    TINY_MODEL = {"name": "cnn_cluttered", "options": {}}
else:  # pragma: no cover - depends on which families are installed
    TINY_MODEL = {"name": "resnet18", "options": {"layers": [1, 1, 1, 1]}}

TINY = {
    "name": "tiny",
    "seed": 1,
    "model": TINY_MODEL,
    "data": {
        "source": "synthetic",
        "name": "digits",
        "options": {"train": 32, "validation": 16, "test": 16},
        "image_size": [32, 32],
        "channels": 1,
        "normalization": "unit",
    },
    "augment": {"translation": 0.1},
    "schedule": {"warmup_epochs": 0.5},
    "training": {"batch_size": 16, "jit_compile": "false", "verbose": 0, "label_smoothing": 0.1},
    "phases": [
        {"name": "head", "epochs": 1, "learning_rate": 1e-3, "freeze_backbone": True},
        {"name": "full", "epochs": 2, "learning_rate": 5e-4},
    ],
    # Handing over (TFLite files, the attention figure) has tests of its own (test_hand_over).
    "export": {"tflite": []},
    "figures": {"attention": False},
}


def tiny(**sections):
    """TINY with whole sections or top-level keys replaced, e.g. tiny(phases=[...])."""
    raw = copy.deepcopy(TINY)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return raw


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def write_toml(raw, path):
    """A raw recipe dict as a TOML file (the subset recipes use)."""
    lines = [f"{key} = {toml_value(value)}" for key, value in raw.items() if not isinstance(value, (dict, list))]
    for key, value in raw.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"] + [f"{k} = {toml_value(v)}" for k, v in value.items()]
    for phase in raw.get("phases", []):
        lines += ["", "[[phases]]"] + [f"{k} = {toml_value(v)}" for k, v in phase.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def build_parser():
    """A parser like attention_zoo.cli's, with the training commands added."""
    parser = argparse.ArgumentParser(prog="attention-zoo")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run_cli(argv):
    """(exit status, stdout) as attention_zoo.cli.main gives them (ValueError -> status 2)."""
    args = build_parser().parse_args(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = args.run(args)
        except ValueError as error:
            print(f"error: {error}")
            code = 2
    return code, out.getvalue()
