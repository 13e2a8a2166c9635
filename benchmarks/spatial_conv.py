"""CBAM's 7x7 spatial-gate convolution as the zoo computes it (`pooling.conv_to_one_channel`,
one banded matrix product per output row) against TensorFlow's convolution, at the map sizes of
ResNet-50's four stages at 224x224, on the TF backend.

    python benchmarks/spatial_conv.py [--batch 8] [--rounds 15]

Both take the gate's two pooled maps (channel max and mean of a random feature map) and the
same kernel; the pooling is timed alone and subtracted, in interleaved rounds.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from gate_cost import STAGES  # noqa: E402
from timing import interleaved_seconds, median_difference, positive_int  # noqa: E402

from attention_zoo.layers.pooling import conv_to_one_channel  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--rounds", type=positive_int, default=15)
    parser.add_argument("--iterations", type=positive_int, default=10, help="calls per form per round")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    kernel = tf.Variable(rng.normal(size=(7, 7, 2, 1)).astype("float32"))

    def pooled(features):
        return [tf.reduce_max(features, -1, keepdims=True), tf.reduce_mean(features, -1, keepdims=True)]

    forms = {
        "pooling only": lambda features: tf.add_n(pooled(features)),
        "banded product": lambda features: conv_to_one_channel(pooled(features), kernel),
        "tf convolution": lambda features: tf.nn.conv2d(tf.concat(pooled(features), -1), kernel, 1, "SAME"),
    }
    print(f"TF {tf.__version__}, Keras {keras.__version__}, batch {args.batch}, {args.rounds} interleaved rounds")
    print(f"{'map':<12} {'banded product ms':>18} {'tf convolution ms':>18} {'ratio':>6}")
    for size, channels, _ in STAGES:
        features = tf.constant(rng.normal(size=(args.batch, size, size, channels)), tf.float32)
        functions = {label: tf.function(form) for label, form in forms.items()}
        product, convolution = (functions[label](features) for label in ("banded product", "tf convolution"))
        np.testing.assert_allclose(product.numpy(), convolution.numpy(), rtol=1e-4, atol=1e-4)
        calls = {label: (lambda f=f: f(features)) for label, f in functions.items()}
        seconds = interleaved_seconds(calls, args.rounds, args.iterations)
        product_ms = 1e3 * median_difference(seconds, "banded product", "pooling only")
        convolution_ms = 1e3 * median_difference(seconds, "tf convolution", "pooling only")
        ratio = product_ms / convolution_ms
        print(f"{f'{size}x{size}':<12} {product_ms:>18.3f} {convolution_ms:>18.3f} {ratio:>5.2f}x")


if __name__ == "__main__":
    main()
