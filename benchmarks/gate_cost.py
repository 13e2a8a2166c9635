"""What each block attention adds to a ResNet-50 block, stage by stage, on the TF backend.

    python benchmarks/gate_cost.py [--batch 8] [--rounds 9] [--attention se cbam eca]

Times a block's tail, `relu(attention(y) + shortcut)`, against the plain `relu(y + shortcut)`
at the feature-map sizes of ResNet-50's four stages at 224x224, in interleaved rounds, and
sums the per-block differences over the network's 3 + 4 + 6 + 3 blocks. Divided by
resnet50's time from benchmarks/resnet_latency.py, that sum is the ratio the gates alone
would give, which tells a slow machine apart from a slow gate.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import compiled_forward, interleaved_seconds, median_difference, medians, positive_int  # noqa: E402

from attention_zoo.layers import create_attention, list_attention  # noqa: E402

# (size, channels, blocks) of ResNet-50's bottleneck outputs at 224x224.
STAGES = [(56, 256, 3), (28, 512, 4), (14, 1024, 6), (7, 2048, 3)]


def block_tail(kind, size, channels):
    branch, shortcut = keras.Input((size, size, channels)), keras.Input((size, size, channels))
    attended = branch if kind == "none" else create_attention(kind, channels)(branch)
    outputs = keras.layers.ReLU()(keras.layers.Add()([attended, shortcut]))
    return keras.Model([branch, shortcut], outputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--rounds", type=positive_int, default=9)
    parser.add_argument("--iterations", type=positive_int, default=5, help="calls per tail per round")
    parser.add_argument("--attention", nargs="+", default=["se", "eca", "cbam"])
    args = parser.parse_args()
    unknown = sorted(set(args.attention) - set(list_attention()))
    if unknown:
        parser.error(f"unknown attention {unknown}; registered: {', '.join(list_attention())}")

    kinds = ["none", *args.attention]
    rng = np.random.default_rng(0)
    extra_ms = {kind: [] for kind in args.attention}
    print(f"TF {tf.__version__}, Keras {keras.__version__}, batch {args.batch}, {args.rounds} interleaved rounds")
    print(f"{'stage':<16} {'plain ms':>9} " + " ".join(f"{'+' + kind + ' ms':>10}" for kind in args.attention))
    for size, channels, blocks in STAGES:
        shape = (args.batch, size, size, channels)
        inputs = [tf.constant(rng.normal(size=shape), tf.float32) for _ in range(2)]
        forwards = {kind: compiled_forward(block_tail(kind, size, channels), jit=False) for kind in kinds}
        calls = {kind: (lambda forward=forward: forward(inputs)) for kind, forward in forwards.items()}
        seconds = interleaved_seconds(calls, args.rounds, args.iterations)
        plain = medians(seconds)["none"]
        row = []
        for kind in args.attention:
            extra = median_difference(seconds, kind, "none")
            extra_ms[kind].append(1e3 * extra * blocks)
            row.append(f"{1e3 * extra:>10.2f}")
        print(f"{f'{size}x{size}x{channels}':<16} {1e3 * plain:>9.2f} " + " ".join(row))
    print(f"{'x blocks, summed':<16} {'':>9} " + " ".join(f"{sum(extra_ms[k]):>10.1f}" for k in args.attention))


if __name__ == "__main__":
    main()
