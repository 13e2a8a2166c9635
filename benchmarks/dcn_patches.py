"""Is a trained DCN short of fine features where it looks, or short of what its layers learned?

Evaluates the best model of finished DCN runs on their test split with the number of fine
patches k it was trained with, with the coarse map alone (k = 0: the top layers on the coarse
features, the prediction the saliency differentiates) and with more or fewer patches
(`DynamicCapacityNetwork.with_patches`). Only k changes: the weights are the trained ones, so
a model that gains little from many more patches is limited by its fine and top layers, not by
where its attention went.

    python benchmarks/dcn_patches.py runs/benchmarks_full/dcn/dcn runs/experiments/dcn_hint0 \
        --patches 0 4 16 32 64

Each run is read from its report.json (recipe settings, data and preprocessing as trained).
Nothing here is timed.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from attention_zoo.models.dynamic_capacity import DynamicCapacityNetwork  # noqa: E402
from attention_zoo.training import RecipeError, evaluate_model  # noqa: E402
from attention_zoo.training.evaluation import held_out_split, model_and_settings  # noqa: E402
from attention_zoo.training.trainer import Data  # noqa: E402


class CoarseOnly(keras.Model):
    """The trained DCN's top layers on its coarse map: what the saliency is computed from."""

    def __init__(self, dcn):
        super().__init__(name=f"{dcn.name}_coarse_only")
        self.dcn = dcn

    def call(self, images):
        return self.dcn.top(self.dcn.coarse(images, training=False), training=False)


def with_patches(trained, num_patches):
    return CoarseOnly(trained) if num_patches == 0 else trained.with_patches(num_patches)


def read_run(run_dir):
    model_path, settings = model_and_settings(run_dir)
    trained = keras.saving.load_model(model_path, compile=False)
    if not isinstance(trained, DynamicCapacityNetwork):
        raise RecipeError(f"{run_dir}: best.keras is a {type(trained).__name__}, not a DynamicCapacityNetwork")
    return trained, settings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories of DCN recipes")
    parser.add_argument("--patches", type=int, nargs="+", default=[0, 4, 16, 32, 64],
                        help="k values to evaluate besides the trained one (0 = coarse map only)")
    parser.add_argument("--split", default="", help="split to evaluate (default: the recipe's test split)")
    args = parser.parse_args(argv)

    rows = []
    for run_dir in args.runs:
        try:
            trained, settings = read_run(run_dir)
        except RecipeError as error:
            parser.error(str(error))
        split = args.split or held_out_split(settings)
        data = Data(settings, splits=[])
        patches = sorted({trained.num_patches, *args.patches})
        accuracy = {}
        for k in patches:
            metrics = evaluate_model(with_patches(trained, k), settings, split, data=data)
            accuracy[k] = metrics["accuracy"]
            print(f"{run_dir}: k={k}{' (trained)' if k == trained.num_patches else ''} accuracy {accuracy[k]:.4f}",
                  file=sys.stderr)
        rows.append((run_dir, trained.num_patches, trained.hint_weight, split, accuracy))

    all_k = sorted({k for *_, accuracy in rows for k in accuracy})
    print("| run | trained k | hint weight | split | " + " | ".join(
        "coarse only" if k == 0 else f"k={k}" for k in all_k) + " |")
    print("|---|---:|---:|---|" + "---:|" * len(all_k))
    for run_dir, trained_k, hint_weight, split, accuracy in rows:
        cells = [
            (f"**{accuracy[k]:.4f}**" if k == trained_k else f"{accuracy[k]:.4f}") if k in accuracy else ""
            for k in all_k
        ]
        print(f"| {run_dir} | {trained_k} | {hint_weight:g} | {split} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
