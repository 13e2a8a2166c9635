"""Training-step time of the grouped-convolution ResNets relative to resnet50, measured in one
run on the TF backend (`model.train_on_batch`, SGD, batch 8).

    python benchmarks/training_step.py [--batch 8] [--size 224] [--rounds 5]

Models are timed in interleaved rounds, and each ratio is the median of per-round ratios
(benchmarks/timing.py). Keras runs TensorFlow's grouped convolutions on the CPU through XLA, whose
gradient for them is very slow; `layers/grouped_conv.py` trains them with TensorFlow's own
grouped kernels where it has them (oneDNN), and as depthwise convolutions and sums elsewhere.
Nothing here is asserted: the figures are what one run measured.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import interleaved_seconds, median_ratio, medians, positive_int  # noqa: E402

import attention_zoo  # noqa: E402

# Each model's Keras train step is a tf.function of its own, traced once; TensorFlow counts the
# traces of them all together (they share one code object) and would warn of retracing.
tf.get_logger().setLevel("ERROR")

BASELINE = "resnet50"
MODELS = ["resnext50_32x4d", "sknet50", "se_resnet50", "cbam_resnet50"]


def compiled(name, size):
    model = attention_zoo.get(name, num_classes=10, input_shape=(size, size, 3))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--only", nargs="*", help="model names to time against resnet50")
    args = parser.parse_args()

    names = [BASELINE] + [name for name in MODELS if not args.only or name in args.only]
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, 10, args.batch)
    models = {name: compiled(name, args.size) for name in names}
    calls = {name: (lambda model=model: model.train_on_batch(images, labels)) for name, model in models.items()}
    seconds = interleaved_seconds(calls, args.rounds)
    median_seconds = medians(seconds)

    print(f"Keras {keras.__version__} on {keras.backend.backend()}, train_on_batch (SGD), batch {args.batch}, "
          f"{args.size}x{args.size}, {args.rounds} interleaved rounds, {os.cpu_count()} CPUs")
    print(f"{'model':<18} {'s/step':>7} {'x resnet50':>11}")
    for name in names:
        print(f"{name:<18} {median_seconds[name]:>7.2f} {median_ratio(seconds, name, BASELINE):>10.2f}x")


if __name__ == "__main__":
    main()
