"""Latency of the attention ResNet-50s relative to their plain baselines, and of the zoo's
resnet50 relative to keras.applications.ResNet50, measured in one run on the TF backend.

    python benchmarks/resnet_latency.py [--batch 8] [--size 224] [--rounds 7] [--jit]

Models are timed in interleaved rounds (every model once per round), so slow drift of the
machine affects all of them alike; each ratio is the median of per-round ratios. Targets
(issue 2): resnet50 <= 1.00 x keras.applications, se_resnet50 <= 1.08 x resnet50,
cbam_resnet50 <= 1.12 x resnet50, sknet50 <= 1.5 x resnext50_32x4d.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import (  # noqa: E402
    compiled_forward,
    interleaved_seconds,
    median_ratio,
    medians,
    positive_int,
    ratio_quartiles,
)

import attention_zoo  # noqa: E402

COMPARISONS = [
    # (model, baseline, target ratio)
    ("resnet50", "keras.applications.ResNet50", 1.00),
    ("se_resnet50", "resnet50", 1.08),
    ("cbam_resnet50", "resnet50", 1.12),
    ("eca_resnet50", "resnet50", None),
    ("bam_resnet50", "resnet50", None),
    ("sknet50", "resnext50_32x4d", 1.50),
]


def build(name, size):
    if name == "keras.applications.ResNet50":
        return keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    return attention_zoo.get(name, input_shape=(size, size, 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=positive_int, default=7)
    parser.add_argument("--iterations", type=positive_int, default=3, help="forward passes per model per round")
    parser.add_argument("--jit", action="store_true", help="compile each forward pass with XLA")
    parser.add_argument("--only", nargs="*", help="model names to include (with their baselines)")
    args = parser.parse_args()

    comparisons = [c for c in COMPARISONS if not args.only or c[0] in args.only]
    names = sorted({n for c in comparisons for n in c[:2]})
    images = tf.constant(np.random.default_rng(0).uniform(0, 1, (args.batch, args.size, args.size, 3)), tf.float32)
    forwards = {name: compiled_forward(build(name, args.size), args.jit) for name in names}
    calls = {name: (lambda forward=forward: forward(images)) for name, forward in forwards.items()}
    seconds = interleaved_seconds(calls, args.rounds, args.iterations)
    median_seconds = medians(seconds)

    mode = "XLA" if args.jit else "tf.function graph"
    print(f"TF {tf.__version__}, Keras {keras.__version__}, {mode}, batch {args.batch}, {args.size}x{args.size}, "
          f"{args.rounds} interleaved rounds x {args.iterations} passes, {os.cpu_count()} CPUs")
    print(
        f"{'model':<16} {'baseline':<29} {'ms/batch':>9} {'baseline ms':>12} {'ratio':>6} {'middle half':>12} "
        f"{'target':>7}  ok"
    )
    for name, baseline, target in comparisons:
        ratio = median_ratio(seconds, name, baseline)
        lower, upper = ratio_quartiles(seconds, name, baseline)
        ok = "" if target is None else ("yes" if ratio <= target else "NO")
        target_text = "" if target is None else f"{target:.2f}x"
        print(
            f"{name:<16} {baseline:<29} {1e3 * median_seconds[name]:>9.1f} "
            f"{1e3 * median_seconds[baseline]:>12.1f} {ratio:>5.2f}x {f'{lower:.2f}-{upper:.2f}x':>12} "
            f"{target_text:>7}  {ok}"
        )
    print("ratio: the median of the per-round ratios; middle half: their lower to upper quartile")


if __name__ == "__main__":
    main()
