"""What a finished run hands over next to its best model: TFLite files and an attention figure.

Both are made from `best.keras` after the final evaluation. Neither may cost the user the
trained model: a failure is recorded in the run report (with the reason) and the run stays
completed, since the model itself is fine and `attention-zoo export` can be run again by hand.
"""

import importlib.util
import math

import keras
import numpy as np

from attention_zoo.export import ExportError, export_tflite


def example_images(data, split, count):
    """Up to `count` unaugmented, normalised images of `split`, as the model sees them."""
    batches, _ = data.batches_for(split)
    images = []
    for batch in batches.take(math.ceil(count / data.batch_size)):
        images.append(keras.ops.convert_to_numpy(batch[0]))
    return np.concatenate(images)[:count] if images else np.zeros((0,))


def export_best_model(model, run_dir, precisions, representative_images):
    """Writes `model_<precision>.tflite` (and its parity report) for each precision;
    returns {precision: summary}, each summary a path and figures or an error."""
    results = {}
    if not precisions:
        return results
    if keras.backend.backend() != "tensorflow":
        reason = f"TFLite export converts TensorFlow graphs; this run used {keras.backend.backend()}. " \
                 f"Run: KERAS_BACKEND=tensorflow attention-zoo export {run_dir / 'best.keras'} -o model.tflite"
        return {precision: {"error": reason} for precision in precisions}
    for precision in precisions:
        path = run_dir / f"model_{precision}.tflite"
        try:
            report = export_tflite(model, str(path), quantize=precision, representative_data=representative_images)
        except ExportError as error:
            results[precision] = {"error": str(error)}
            continue
        results[precision] = {
            "path": str(path),
            "report": report.report_path,
            "file_bytes": report.file_bytes,
            "max_relative_error": report.max_relative_error,
            "top1_agreement": report.top1_agreement,
        }
    return results


def save_attention_figure(model, images, path):
    """attention.png: the model's attention on `images`; returns its path, or why there is none."""
    from attention_zoo import visualization

    missing = [module for module in ("matplotlib", "PIL") if importlib.util.find_spec(module) is None]
    if missing:
        return {"skipped": f"needs {', '.join(missing)}: pip install 'attention_zoo[viz]'"}
    if not visualization.has_attention(model):
        return {"skipped": f"{model.name} has no attention layers that hand back their maps"}
    visualization.plot_attention(model, images, path=str(path))
    return {"path": str(path)}
