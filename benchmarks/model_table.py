"""Prints the README's model table from real builds: parameters (PyTorch convention) and
GMACs at each model's default input size, next to the reference figures.

    python benchmarks/model_table.py [PATTERN]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import attention_zoo  # noqa: E402


def reported(info):
    parts = [f"{k.replace('imagenet_', '').replace('_', ' ')} {v}" for k, v in info.reported.items() if k != "source"]
    return ", ".join(parts)


def main(pattern="*"):
    print("| model | family | params (built) | reference | GMACs (built) | reference | reported |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name in attention_zoo.list_models(pattern):
        info = attention_zoo.model_info(name)
        model = attention_zoo.get(name)
        size, channels = info.default_input_size, info.input_channels
        params = attention_zoo.count_params(model)
        gmacs = attention_zoo.count_macs(model, input_shape=(size, size, channels)) / 1e9
        reference = f"{info.params:,}" if info.params else ""
        if info.params:
            reference += " ✓" if params == info.params else " ✗"
        print(
            f"| {name} | {info.family} | {params:,} | {reference} | {gmacs:.2f} @{size} | "
            f"{info.gmacs or ''} | {reported(info)} |"
        )
        keras.utils.clear_session()


if __name__ == "__main__":
    main(*sys.argv[1:])
