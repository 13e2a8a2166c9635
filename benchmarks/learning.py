"""Does the attention help? Each comparison trains an attention model and its baseline with the
same recipe, data and budget on the embedded data, and prints one table with the papers' figures.

    python benchmarks/learning.py                      # every comparison, the recipes' budgets
    python benchmarks/learning.py --only stn --epochs 5 --train-examples 5000   # a quicker look

Comparisons (issue targets in brackets):
  stn   stn_cnn vs cnn_cluttered on 60x60 cluttered digits      [the STN beats the plain CNN]
  dcn   dcn vs dcn_fine (and dcn_coarse) on 100x100 clutter     [DCN reaches the fine model's
                                                                 accuracy at a fraction of its MACs]
  ram   ram vs ram(random_glimpses=True) on 60x60 clutter       [RAM beats random glimpses]
  unet  attention_unet on the embedded shapes                   [mean IoU at least 0.9]

Runs go to runs/benchmarks/<comparison>/<model>; an interrupted benchmark resumes its runs.
Test-split figures come from each run's report.json. Nothing here is timed against a limit:
the figures are what one run measured.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import attention_zoo  # noqa: E402
from attention_zoo.training import train  # noqa: E402

# comparison -> (recipe, [(label, model name, model options)], test metric)
COMPARISONS = {
    "stn": ("stn_cluttered_digits", [("stn_cnn", "stn_cnn", {}), ("cnn_cluttered", "cnn_cluttered", {})], "accuracy"),
    "dcn": (
        "dcn_cluttered_digits",
        [("dcn", "dcn", {}), ("dcn_fine", "dcn_fine", {}), ("dcn_coarse", "dcn_coarse", {})],
        "accuracy",
    ),
    "ram": (
        "ram_cluttered_digits",
        [("ram", "ram", {}), ("ram random glimpses", "ram", {"random_glimpses": True})],
        "accuracy",
    ),
    "unet": ("attention_unet_shapes", [("attention_unet", "attention_unet", {})], "mean_iou"),
}

NO_HAND_OVER = ["export.tflite=[]", "figures.attention=false"]


def budget_overrides(args, recipe):
    """The shared budget as --set overrides (applied to every model of a comparison)."""
    from attention_zoo.training import load_recipe

    settings = load_recipe(recipe).settings
    overrides = []
    if args.epochs:
        overrides.append(f"phases.0.epochs={args.epochs}")
    if args.train_examples:
        options = dict(settings["data"]["options"], train=args.train_examples)
        overrides.append("data.options={" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items()) + "}")
    return overrides


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


def run_comparison(key, args):
    recipe, entries, metric = COMPARISONS[key]
    budget = budget_overrides(args, recipe)
    rows = []
    for label, name, options in entries:
        output = pathlib.Path(args.output) / key / label.replace(" ", "_")
        overrides = [f"model.name={name}"] + [f"model.options.{k}={json.dumps(v)}" for k, v in options.items()]
        report = train(recipe, output=str(output), overrides=overrides + budget + NO_HAND_OVER, verbose=args.verbose)
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
            "paper": {k: v for k, v in info.reported.items() if k != "source"},
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(COMPARISONS), help="run only these comparisons")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: each recipe's)")
    parser.add_argument("--train-examples", type=int, help="training examples of every run (default: each recipe's)")
    parser.add_argument("--output", default="runs/benchmarks", help="where the runs go")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
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
