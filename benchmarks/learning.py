"""Does the attention help? Each comparison trains an attention model and its baseline with the
same recipe, data and budget on the embedded data, and prints one table with the papers' figures.

    python benchmarks/learning.py                      # every comparison, the recipes' budgets
    python benchmarks/learning.py --only stn --epochs 5 --train-examples 5000   # a quicker look
    python benchmarks/learning.py --only dcn --budget time   # the baseline's training time each
    python benchmarks/learning.py --only dcn --budget time --plan   # only the step times and budgets

Comparisons (issue targets in brackets):
  stn   stn_cnn vs cnn_cluttered on 60x60 cluttered digits      [the STN beats the plain CNN]
  dcn   dcn vs dcn_fine (and dcn_coarse) on 100x100 clutter     [DCN reaches the fine model's
                                                                 accuracy at a fraction of its MACs]
  ram   ram vs ram(random_glimpses=True) on 60x60 clutter       [RAM beats random glimpses]
  unet  attention_unet on the embedded shapes                   [mean IoU at least 0.9]

The budget is the same number of training examples for every model of a comparison (the
default), or with `--budget time` the same training time: the seconds of one training step of
each model are measured in one run, in interleaved rounds on a batch of the recipe's data, and
each model renders as many more (or fewer) canvases as the baseline's step costs more (or less)
than its own, for the same epochs. A DCN step costs a fraction of the fine network's, so at the
same time it sees more examples.

Runs go to runs/benchmarks/<comparison>/<model> (<comparison>_same_time with `--budget time`,
with the step times in seconds_per_step.json); an interrupted benchmark resumes its runs.
Test-split figures come from each run's report.json. Nothing here is timed against a limit:
the figures are what one run measured.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from timing import interleaved_seconds, medians, positive_int  # noqa: E402

import attention_zoo  # noqa: E402
from attention_zoo.training import load_recipe, train  # noqa: E402
from attention_zoo.training.trainer import Data, _write_json, build_model, compile_model, make_optimizer  # noqa: E402

# comparison -> (recipe, [(label, model name, model options)], test metric, the baseline: the
# label whose training time is everyone's budget under --budget time)
COMPARISONS = {
    "stn": (
        "stn_cluttered_digits",
        [("stn_cnn", "stn_cnn", {}), ("cnn_cluttered", "cnn_cluttered", {})],
        "accuracy",
        "cnn_cluttered",
    ),
    "dcn": (
        "dcn_cluttered_digits",
        [("dcn", "dcn", {}), ("dcn_fine", "dcn_fine", {}), ("dcn_coarse", "dcn_coarse", {})],
        "accuracy",
        "dcn_fine",
    ),
    "ram": (
        "ram_cluttered_digits",
        [("ram", "ram", {}), ("ram random glimpses", "ram", {"random_glimpses": True})],
        "accuracy",
        "ram random glimpses",
    ),
    "unet": ("attention_unet_shapes", [("attention_unet", "attention_unet", {})], "mean_iou", "attention_unet"),
}

NO_HAND_OVER = ["export.tflite=[]", "figures.attention=false"]


def model_overrides(name, options):
    return [f"model.name={name}"] + [f"model.options.{k}={json.dumps(v)}" for k, v in options.items()]


def budget_overrides(recipe, epochs=None, train_examples=None):
    """A budget as --set overrides."""
    settings = load_recipe(recipe).settings
    overrides = []
    if epochs:
        overrides.append(f"phases.0.epochs={epochs}")
    if train_examples:
        options = dict(settings["data"]["options"], train=train_examples)
        overrides.append("data.options={" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items()) + "}")
    return overrides


def seconds_per_step(recipe, entries, rounds, steps=4):
    """{label: median seconds of one training step}, each model built, compiled and fed as the
    trainer does (the recipe's optimizer, loss, metrics and batch), timed in interleaved rounds
    so that a busy machine slows them alike."""
    settings = load_recipe(recipe).settings
    data = Data(settings, splits=["validation"])
    images, labels = next(iter(data.batches["validation"]))
    models = {}
    for label, name, options in entries:
        model_settings = load_recipe(recipe, model_overrides(name, options)).settings
        model, _ = build_model(model_settings, data.info)
        phase = model_settings["phases"][0]
        compile_model(model, model_settings, data.info, data.one_hot, make_optimizer(model_settings, phase, 1000))
        models[label] = model
    calls = {label: (lambda model=model: model.train_on_batch(images, labels)) for label, model in models.items()}
    return medians(interleaved_seconds(calls, rounds, iterations=steps, warmup=3))


def time_budgets(key, args, directory):
    """{label: training examples} giving each model of the comparison the baseline's training
    time: the baseline's examples times its step time over the model's. The step times are
    kept in `directory`, so that an interrupted benchmark resumes its runs with the same budgets
    (a new measurement would change them, and the trainer refuses to resume other settings)."""
    recipe, entries, _, baseline = COMPARISONS[key]
    settings = load_recipe(recipe, budget_overrides(recipe, args.epochs, args.train_examples)).settings
    examples = settings["data"]["options"].get("train")
    if not examples:
        raise SystemExit(f"--budget time scales data.options.train, which recipe {recipe} does not set")
    measured = directory / "seconds_per_step.json"
    if measured.is_file():
        steps = json.loads(measured.read_text())
        print(f"{key}: step times measured before, from {measured}")
    else:
        steps = seconds_per_step(recipe, entries, args.rounds)
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(measured, steps)  # whole or not at all: a torn file would stop every resume
    budgets = {}
    for label, step in steps.items():
        budgets[label] = round(examples * steps[baseline] / step)
        print(f"{key}: {label} trains {1e3 * step:.0f} ms/step ({step / steps[baseline]:.2f}x {baseline}): "
              f"{budgets[label]} training examples", flush=True)
    return budgets, steps


def per_image_macs(report):
    """MACs of one image through the run's model (DCN: the MACs it actually spends)."""
    settings = report["settings"]
    name, options = settings["model"]["name"], settings["model"]["options"]
    size, channels = settings["data"]["image_size"], settings["data"]["channels"]
    model = attention_zoo.get(
        name, num_classes=report["data"]["num_classes"], input_shape=(*size, channels), **options
    )
    if name == "dcn":
        from attention_zoo.models.dynamic_capacity import macs_report

        return macs_report(model)["dcn"]
    return attention_zoo.count_macs(model, input_shape=(*size, channels))


def comparison_directory(key, args):
    return pathlib.Path(args.output) / (key if args.budget == "examples" else f"{key}_same_time")


def run_comparison(key, args):
    recipe, entries, metric, _ = COMPARISONS[key]
    directory = comparison_directory(key, args)
    budgets, steps = time_budgets(key, args, directory) if args.budget == "time" else ({}, {})
    rows = []
    for label, name, options in entries:
        output = directory / label.replace(" ", "_")
        budget = budget_overrides(recipe, args.epochs, budgets.get(label, args.train_examples))
        overrides = model_overrides(name, options) + budget + NO_HAND_OVER
        report = train(recipe, output=str(output), overrides=overrides, verbose=args.verbose)
        test = next(iter(report["evaluation"].values()), {})
        info = attention_zoo.model_info(name)
        rows.append({
            "comparison": key,
            "model": label,
            metric: test.get(metric),
            "mmacs_per_image": round(per_image_macs(report) / 1e6, 2),
            "epochs": sum(phase["epochs"] for phase in report["settings"]["phases"]),
            "train_examples": report["data"]["examples"].get("train"),
            "train_seconds": report["timings"]["train_seconds"],
            "budget": args.budget,
            "seconds_per_step": steps.get(label),
            "paper": {k: v for k, v in info.reported.items() if k != "source"},
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(COMPARISONS), help="run only these comparisons")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: each recipe's)")
    parser.add_argument("--train-examples", type=int, help="training examples of every run (default: each recipe's); "
                        "with --budget time, of the baseline")
    parser.add_argument("--budget", choices=("examples", "time"), default="examples",
                        help="the same training examples for every model, or the baseline's training time")
    parser.add_argument("--rounds", type=positive_int, default=5, help="timing rounds of --budget time")
    parser.add_argument("--plan", action="store_true",
                        help="with --budget time: measure (or read) the step times, print each model's budget, train nothing")
    parser.add_argument("--output", default="runs/benchmarks", help="where the runs go")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if args.plan:
        if args.budget != "time":
            parser.error("--plan shows the budgets of --budget time")
        for key in args.only or COMPARISONS:
            time_budgets(key, args, comparison_directory(key, args))
        return 0
    rows = [row for key in (args.only or COMPARISONS) for row in run_comparison(key, args)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| comparison | model | test metric | MMACs / image | epochs x train examples | train s | paper |")
    print("|---|---|---:|---:|---|---:|---|")
    for row in rows:
        metric = "mean_iou" if "mean_iou" in row else "accuracy"
        value = row[metric]
        shown = f"{metric} {value:.4f}" if value is not None else "-"
        paper = ", ".join(f"{k} {v}" for k, v in row["paper"].items() if not isinstance(v, dict)) or "-"
        print(f"| {row['comparison']} | {row['model']} | {shown} | {row['mmacs_per_image']} | "
              f"{row['epochs']} x {row['train_examples']} | {row['train_seconds']:.0f} | {paper} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
