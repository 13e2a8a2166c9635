"""Training and evaluation from declarative recipes (recipes/*.toml).

    from attention_zoo import training
    report = training.train("quickstart", overrides=["phases.0.epochs=2"], output="runs/try")
    metrics = training.evaluate("runs/try")

From the shell: `attention-zoo train RECIPE [--set key=value ...] [--output DIR]` and
`attention-zoo evaluate RUN_DIR_OR_MODEL`; `commands.add_commands` adds both to a parser.
"""

from attention_zoo.training.distribution import Distribution, DistributionError, resolve as resolve_distribution
from attention_zoo.training.metrics import DiceScore, classification_metrics, segmentation_metrics
from attention_zoo.training.recipe import SCHEMA, Recipe, RecipeError, apply_overrides, load as load_recipe
from attention_zoo.training.trainer import RunDirectory, Trainer, TrainingError, evaluate_model, train
from attention_zoo.training.evaluation import evaluate

__all__ = [
    "DiceScore",
    "Distribution",
    "DistributionError",
    "Recipe",
    "RecipeError",
    "RunDirectory",
    "SCHEMA",
    "Trainer",
    "TrainingError",
    "apply_overrides",
    "classification_metrics",
    "evaluate",
    "evaluate_model",
    "load_recipe",
    "resolve_distribution",
    "segmentation_metrics",
    "train",
]
