"""What a finished run hands over next to its best model: TFLite files and an attention figure.

Both are made from `best.keras` after the final evaluation. Neither may cost the user the
trained model: a failure is recorded in the run report (with the reason) and the run stays
completed, since the model itself is fine and `attention-zoo export` can be run again by hand.
"""

import math

import keras
import numpy as np

from attention_zoo.export import ExportError, export_tflite


def examples(settings, split, count):
    """Up to `count` unaugmented examples of the recipe's `split` as the model sees them:
    (normalised images, targets as the recipe's loss takes them, e.g. one-hot labels)."""
    from attention_zoo.training.trainer import Data  # the trainer imports this module

    # Uncached: only a few batches are read, and tf.data warns about a cache left half-filled.
    data = Data({**settings, "data": {**settings["data"], "cache": False}}, splits=[])
    batches, _ = data.batches_for(split)
    images, targets = [], []
    for batch in batches.take(math.ceil(count / data.batch_size)):
        images.append(keras.ops.convert_to_numpy(batch[0]))
        targets.append(keras.ops.convert_to_numpy(batch[1]))
    if not images:
        return np.zeros((0,)), np.zeros((0,))
    return np.concatenate(images)[:count], np.concatenate(targets)[:count]


def export_best_model(model, run_dir, precisions, representative_images, keep_float=None):
    """Writes `model_<precision>.tflite` (and its parity report) for each precision;
    returns {precision: summary}, each summary a path and figures or an error.
    `keep_float` applies to the int8 file (see `export_tflite`)."""
    results = {}
    for precision in precisions:
        path = run_dir / f"model_{precision}.tflite"
        try:
            report = export_tflite(
                model, str(path), quantize=precision, representative_data=representative_images,
                keep_float=keep_float if precision == "int8" else None,
            )
        except ExportError as error:
            results[precision] = {"error": str(error)}
            continue
        results[precision] = {
            "path": str(path),
            "report": report.report_path,
            "file_bytes": report.file_bytes,
            "max_relative_error": report.max_relative_error,
            "top1_agreement": report.top1_agreement,
            "float_layers": report.float_layers,
        }
    return results


def save_attention_figure(model, images, path):
    """attention.png: the model's attention on `images`; returns its path, or why there is none."""
    from attention_zoo import visualization

    missing = visualization.missing_dependencies()
    if missing:
        return {"skipped": f"needs {', '.join(missing)}: pip install 'attention_zoo[viz]'"}
    if not visualization.has_attention(model):
        return {"skipped": f"{model.name} has no attention layers that hand back their maps"}
    visualization.plot_attention(model, images, path=str(path))
    return {"path": str(path)}
