"""The `train` and `evaluate` sub-commands of `attention-zoo`.

    attention-zoo train RECIPE [--set key=value ...] [--output DIR] [--restart]
    attention-zoo evaluate RUN_DIR_OR_MODEL [--recipe RECIPE] [--split SPLIT] [--set key=value ...]

`add_commands(subparsers)` adds both to an argparse sub-parser set; each parsed namespace
carries `run(args) -> exit status`, the convention of `attention_zoo.cli`. The trainer is imported
only when a command runs.
"""

import contextlib
import json
import os
import sys

TRAIN_EPILOG = """\
examples:
  attention-zoo train quickstart
  attention-zoo train recipes/cbam_resnet50_tf_flowers.toml --set training.batch_size=16
  attention-zoo train image_folder --set data.path=~/photos --set model.name=se_resnet50
  attention-zoo train recipes/stn_cluttered_digits.toml --set phases.0.epochs=2 --output runs/stn-try

--set takes a dotted key (section.key, phases.<index>.key, model.options.<option>) and a TOML
value (16, 1e-4, true, [64, 64], "text"; a bare word is a string). Unknown keys and values of
the wrong type are rejected. Running the same command again resumes an interrupted run from
its last checkpoint (RUN_DIR/checkpoint) and loses at most the epoch in progress.

exit status: 0 trained (or already complete), 1 the loss diverged (NaN; the last good
checkpoint is kept), 2 bad recipe or data, 130 interrupted.
"""

EVALUATE_EPILOG = """\
examples:
  attention-zoo evaluate runs/quickstart
  attention-zoo evaluate runs/quickstart --split validation --json
  attention-zoo evaluate model.keras --recipe recipes/se_resnet50_tf_flowers.toml
"""


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _summary(report):
    lines = [f"run {report['name']}: {report['status']}"]
    best = report.get("best")
    if best:
        lines.append(f"  best {best['monitor']} = {best['value']:.4f} at epoch {best['epoch']}")
    for split, metrics in (report.get("evaluation") or {}).items():
        shown = ", ".join(f"{key} {value:.4f}" for key, value in sorted(metrics.items()) if value is not None)
        lines.append(f"  {split}: {shown}")
    lines.append(f"  report: {report['artifacts']['report']}")
    lines.append(f"  best model: {report['artifacts']['best_model']}")
    for precision, export in (report.get("export") or {}).items():
        if "error" in export:
            lines.append(f"  tflite {precision}: not written: {export['error']}")
            continue
        figures = [f"{export['file_bytes'] / 1e6:.2f} MB"]
        if precision == "int8" and export.get("top1_agreement") is not None:
            figures.append(f"top-1 agreement with Keras {export['top1_agreement']:.1%}")
        elif export.get("max_relative_error") is not None:
            figures.append(f"max relative error vs Keras {export['max_relative_error']:.1e}")
        lines.append(f"  tflite {precision}: {export['path']} ({', '.join(figures)})")
    figure = (report.get("figures") or {}).get("attention")
    if figure:
        lines.append(f"  attention figure: {figure.get('path') or 'none (' + figure['skipped'] + ')'}")
    return "\n".join(lines)


def _train(args):
    _quiet_tensorflow()
    from attention_zoo.training.trainer import Trainer

    trainer = Trainer(args.recipe, args.output, overrides=args.set, restart=args.restart, verbose=args.verbose)
    # With --json, stdout carries only the JSON; Keras' progress goes to stderr.
    progress = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    try:
        with progress:
            report = trainer.train()
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: run the same command again to resume from {trainer.run.last_weights}",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print(json.dumps({key: report[key] for key in ("name", "status", "best", "evaluation", "artifacts", "timings")},
                         indent=2))
    else:
        print(_summary(report))
    return 0 if report["status"] == "completed" else 1


def _evaluate(args):
    _quiet_tensorflow()
    from attention_zoo.training.evaluation import dumps, evaluate

    verbose = args.verbose if args.verbose is not None else (0 if args.json else 1)
    progress = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with progress:
        result = evaluate(args.target, recipe=args.recipe, overrides=args.set, splits=args.split, verbose=verbose)
    if args.json:
        print(dumps(result))
    else:
        print(f"model {result['model']}")
        for split, metrics in result["evaluation"].items():
            print(f"  {split}: " + ", ".join(f"{key} {value:.4f}" for key, value in sorted(metrics.items())))
    return 0


def add_commands(subparsers):
    """Adds `train` and `evaluate` to `subparsers` (from `parser.add_subparsers()`)."""
    import argparse

    train = subparsers.add_parser(
        "train",
        help="train or fine-tune a model from a recipe (resumes an interrupted run)",
        description="Train or fine-tune a model from a declarative recipe (recipes/*.toml).",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("recipe", help="a recipe file, or the name of one in recipes/ (e.g. quickstart)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe setting; repeatable")
    train.add_argument("--output", metavar="DIR", help="run directory (default: the recipe's output, else runs/<name>)")
    train.add_argument("--restart", action="store_true", help="discard an existing run in the directory and start over")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                       help="Keras progress: 0 silent, 1 progress bar, 2 one line per epoch (default: the recipe's)")
    train.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    train.set_defaults(run=_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="evaluate a run's best model, or a .keras model with a recipe's data",
        description="Evaluate a trained model on a recipe's splits with the recipe's preprocessing and metrics.",
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("target", metavar="RUN_DIR_OR_MODEL", help="a run directory (uses best.keras and its recipe) "
                          "or a .keras file (needs --recipe)")
    evaluate.add_argument("--recipe", help="recipe whose data, preprocessing and metrics to use")
    evaluate.add_argument("--split", action="append", default=None,
                          help="split to evaluate; repeatable (default: the recipe's test split)")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe setting")
    evaluate.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                          help="Keras progress: 0 silent, 1 progress bar (default; on stderr with --json)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(run=_evaluate)
    return train, evaluate
