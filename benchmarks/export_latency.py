"""Latency and size of LiteRT exports (float32, float16, int8) against the Keras model on the
TF backend, at batch 1, measured in one run; and the int8 file's top-1 agreement.

    python benchmarks/export_latency.py [--size 224] [--rounds 5] [--iterations 10]
        [--models cbam_resnet50 se_resnet50 sknet50 attention56]
        [--quickstart-model runs/quickstart/best.keras [--quickstart-recipe recipes/quickstart.toml]]

Zoo models keep their random initialisation, except that BatchNorm scales initialised to
zero (each residual branch's last BN, so that a block starts as the identity) are set to one:
a zero branch makes the SE / CBAM gates multiply constant zeros, whose degenerate int8 scales
XNNPACK declines, splitting the graph into a partition per block that no trained network has.
They calibrate int8 on --calibration synthetic images; their agreement is "n/a" where Keras
puts every test image in one class. The quickstart model (trained by `bash
scripts/quickstart.sh`) calibrates on its recipe's training images (as many as the recipe's
[export] representative_examples) and measures agreement on its test split, once
full-integer and once with the recipe's [export] keep_float (its spatial transformer's theta
and sampler in float32). Timings interleave rounds (every runtime once per round) and report
medians, so drift of the machine affects all alike. Keras runs as a tf.function graph;
LiteRT with its default XNNPACK delegate and all CPU threads (LiteRT's own default is one
thread). Sizes: each `.tflite` against the Keras model's float32 weights (a `.keras` file may
also hold optimizer state).
Targets (issue 6): int8 >= 2x faster than Keras float32 and <= 0.3x its size, with >= 99 %
top-1 agreement on the quickstart's test data.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import compiled_forward, interleaved_seconds, medians, positive_int  # noqa: E402

import attention_zoo  # noqa: E402
from attention_zoo.export import export_tflite, make_interpreter, synthetic_images  # noqa: E402
from attention_zoo.export.verify import compare, dequantize, quantize, run_file, run_keras  # noqa: E402

MODELS = ("cbam_resnet50", "se_resnet50", "sknet50", "attention56")
QUANTIZATIONS = ("none", "float16", "int8")


def recipe_images(recipe, split, limit):
    """(images normalised as the recipe trains, labels) of one split of the recipe's data:
    the trainer's own pipeline, unaugmented."""
    from attention_zoo.training import load_recipe
    from attention_zoo.training.deliverables import examples

    images, targets = examples(load_recipe(recipe).settings, split, limit)
    return images, np.argmax(targets, axis=-1)


def with_nonzero_batchnorm_scales(model):
    """`model` with every all-zero BatchNormalization gamma set to one, as in a trained network."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.scale:
            if not np.any(keras.ops.convert_to_numpy(layer.gamma)):
                layer.gamma.assign(keras.ops.ones_like(layer.gamma))
    return model


def keras_forward(model):
    forward = compiled_forward(model)
    return lambda images: keras.ops.convert_to_numpy(keras.tree.flatten(forward(images))[0])


def litert_forward(path):
    interpreter, _ = make_interpreter(path)
    (input_detail,) = interpreter.get_input_details()
    output_detail = interpreter.get_output_details()[0]

    def forward(images):
        interpreter.set_tensor(input_detail["index"], quantize(images, input_detail))
        interpreter.invoke()
        return dequantize(interpreter.get_tensor(output_detail["index"]), output_detail)

    return forward


def benchmark(name, model, calibration, test_images, args, directory, keep_float=None):
    sizes = {"keras": sum(int(np.prod(weight.shape)) * 4 for weight in model.weights)}
    forwards = {"keras": keras_forward(model)}
    agreement = None
    for mode in QUANTIZATIONS:
        path = os.path.join(directory, f"{name}_{mode}.tflite")
        report = export_tflite(
            model, path, quantize=mode, representative_data=calibration,
            keep_float=keep_float if mode == "int8" else None,
        )
        sizes[mode] = report.file_bytes
        forwards[mode] = litert_forward(path)
        if mode == "int8":
            interpreter, _ = make_interpreter(path)
            batches = [test_images[i:i + 1] for i in range(len(test_images))]
            reference = run_keras(model, test_images)
            parity = compare(run_file(interpreter, batches), reference)
            # A random network often puts every image in one class, where agreement says
            # nothing about the int8 file: it is left out ("n/a").
            if len(np.unique(np.argmax(reference[0], axis=-1))) > 1:
                agreement = parity[0].get("top1_agreement")
    sample = test_images[:1]
    calls = {runtime: (lambda forward=forward: forward(sample)) for runtime, forward in forwards.items()}
    seconds = interleaved_seconds(calls, args.rounds, args.iterations)
    milliseconds = {runtime: 1e3 * value for runtime, value in medians(seconds).items()}
    return milliseconds, sizes, agreement


def print_row(name, milliseconds, sizes, agreement, agreement_target=None):
    """One table row; `agreement_target` (the quickstart's 0.99) joins the speed and size targets."""
    cells = [f"{name:<34}", f"{milliseconds['keras']:>8.1f} ms {sizes['keras'] / 2**20:>7.1f} MiB"]
    for mode in QUANTIZATIONS:
        speedup = milliseconds["keras"] / milliseconds[mode]
        cells.append(f"{milliseconds[mode]:>7.1f} ms {speedup:>5.2f}x {sizes[mode] / sizes['keras']:>5.2f}x")
    meets_targets = milliseconds["keras"] / milliseconds["int8"] >= 2 and sizes["int8"] <= 0.3 * sizes["keras"]
    if agreement_target is not None:
        meets_targets = meets_targets and agreement is not None and agreement >= agreement_target
    verdict = "yes" if meets_targets else "NO"
    cells.append(f"{'n/a' if agreement is None else f'{agreement:.1%}':>6}  {verdict}")
    print(" | ".join(cells), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224, help="input size of the zoo models")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--iterations", type=positive_int, default=10, help="calls per runtime per round")
    parser.add_argument("--calibration", type=int, default=32, help="synthetic calibration images for zoo models")
    parser.add_argument("--quickstart-model", help="a trained .keras file, e.g. runs/quickstart/best.keras")
    parser.add_argument("--quickstart-recipe", default="recipes/quickstart.toml")
    parser.add_argument("--test-images", type=int, default=2000, help="quickstart test images for the agreement")
    args = parser.parse_args()

    print(f"TF {tf.__version__}, Keras {keras.__version__}, batch 1, {args.rounds} interleaved rounds x "
          f"{args.iterations} calls, {os.cpu_count()} CPUs")
    print("speed-up = Keras ms / file ms; size = file bytes / Keras float32 weight bytes")
    print(f"{'model':<34} | {'Keras float32':>23} | {'float32':>24} | {'float16':>24} | {'int8':>24} | top-1  target")
    with tempfile.TemporaryDirectory() as directory:
        for name in args.models:
            model = with_nonzero_batchnorm_scales(attention_zoo.get(name, input_shape=(args.size, args.size, 3)))
            calibration = f"synthetic:{args.calibration}"
            test_images = synthetic_images(args.calibration, (1, args.size, args.size, 3), seed=1)
            print_row(name, *benchmark(name, model, calibration, test_images, args, directory))
            keras.utils.clear_session()
        if args.quickstart_model:
            from attention_zoo.export import selective
            from attention_zoo.training import load_recipe

            model = keras.saving.load_model(args.quickstart_model)
            export_settings = load_recipe(args.quickstart_recipe).settings["export"]
            train_images, _ = recipe_images(args.quickstart_recipe, "train", export_settings["representative_examples"])
            test_images, labels = recipe_images(args.quickstart_recipe, "test", args.test_images)
            keep_float = selective.parse(export_settings["keep_float"])
            variants = [("quickstart, full int8", None)]
            if keep_float:
                variants.append((f"quickstart, keep_float={export_settings['keep_float']}", keep_float))
            for label, kept in variants:
                results = benchmark("quickstart", model, train_images, test_images, args, directory, kept)
                print_row(label, *results, agreement_target=0.99)
            accuracy = float(np.mean(np.argmax(run_keras(model, test_images)[0], -1) == labels))
            print(f"quickstart Keras test accuracy {accuracy:.1%} on {len(labels)} images", file=sys.stderr)


if __name__ == "__main__":
    main()
