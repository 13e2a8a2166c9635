"""Evaluation of a finished (or interrupted) run, or of any saved model with a recipe's data."""

import json
import os
import pathlib

import keras

from attention_zoo.training.recipe import RecipeError, load, validate, apply_overrides
from attention_zoo.training.trainer import Data, RunDirectory, evaluate_model


def model_and_settings(target, recipe=None, overrides=()):
    """(path of the model to evaluate, recipe settings that read its data) for a run directory
    (its best.keras and report.json, or `recipe`) or a `.keras` file with a `recipe`."""
    target = pathlib.Path(os.path.expanduser(str(target)))
    if target.is_dir():
        run = RunDirectory(target)
        if not run.best_model.is_file():
            raise RecipeError(f"{target} has no best.keras: not a run directory, or the run has not finished an epoch")
        if recipe:
            return run.best_model, load(recipe, overrides).settings
        report = run.read_report()
        if report is None:
            raise RecipeError(f"{target} has no report.json; pass --recipe to say how to read the data")
        return run.best_model, validate(apply_overrides(report["settings"], overrides))
    if target.is_file() and target.suffix == ".keras":
        if not recipe:
            raise RecipeError(f"evaluating {target} needs --recipe: the recipe says which data and preprocessing to use")
        return target, load(recipe, overrides).settings
    raise RecipeError(f"{str(target)!r} is neither a run directory nor a .keras model file")


def held_out_split(settings):
    """The split a model is judged on when none is named: the recipe's test split, else its
    validation split ("" when it has neither)."""
    return settings["data"]["test_split"] or settings["data"]["validation_split"]


def evaluate(target, recipe=None, overrides=(), splits=None, verbose=0):
    """Metrics of a run's best model (`target` = run directory) or of a `.keras` model (with a
    `recipe` for the data) on `splits` (default: the recipe's evaluation splits, else its test
    split). Returns {"model": path, "evaluation": {split: {metric: value}}}."""
    model_path, settings = model_and_settings(target, recipe, overrides)
    if not splits:
        splits = settings["evaluation"]["splits"] or [held_out_split(settings)]
    splits = [split for split in splits if split]
    if not splits:
        raise RecipeError("no split to evaluate: pass --split, or set data.test_split")
    model = keras.saving.load_model(model_path, compile=False)
    data = Data(settings, splits=[])
    results = {split: evaluate_model(model, settings, split, verbose=verbose, data=data) for split in splits}
    return {"model": str(model_path), "evaluation": results}


def dumps(result):
    return json.dumps(result, indent=2, sort_keys=True)
