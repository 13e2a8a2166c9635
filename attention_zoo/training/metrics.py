"""Metrics the recipes report: accuracy and top-5 for classification; mean IoU and per-class
Dice for segmentation (computed from one accumulated confusion count, so the epoch value is
the dataset's, not a mean of batch values)."""

import keras
from keras import ops


def _key(text):
    """A class name as a metric-name fragment (logs, CSV columns, TensorBoard tags)."""
    return "".join(c if c.isalnum() else "_" for c in str(text)).strip("_") or "class"


@keras.saving.register_keras_serializable(package="attention_zoo")
class DiceScore(keras.metrics.Metric):
    """Dice = 2 TP / (2 TP + FP + FN) per class, over every pixel seen since the last reset.

    `result()` is a dict: `{name: mean over classes, f"{name}_{class}": per class}`. A class
    absent from both targets and predictions has no Dice (0 / 0): it is NaN in the per-class
    entry and left out of the mean, as Keras' MeanIoU leaves such classes out of its mean.

    y_true: class indices (batch, H, W) or (batch, H, W, 1), or one-hot (batch, H, W, C).
    y_pred: scores or logits (batch, H, W, C); the arg-max is the prediction.
    """

    def __init__(self, num_classes, class_names=None, name="dice", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer of at least 2; got {num_classes!r}")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        shape = (num_classes,)
        self.true_positives = self.add_variable(shape, initializer="zeros", dtype="float32", name="true_positives")
        self.false_positives = self.add_variable(shape, initializer="zeros", dtype="float32", name="false_positives")
        self.false_negatives = self.add_variable(shape, initializer="zeros", dtype="float32", name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == self.num_classes and self.num_classes > 1:
            y_true = ops.argmax(y_true, axis=-1)
        elif len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        truth = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), self.num_classes, dtype="float32")
        predicted = ops.one_hot(
            ops.reshape(ops.argmax(y_pred, axis=-1), (-1,)), self.num_classes, dtype="float32"
        )
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(ops.broadcast_to(sample_weight, ops.shape(y_true)), "float32"), (-1, 1))
            truth, predicted = truth * weight, predicted * weight
        hits = ops.sum(truth * predicted, axis=0)
        self.true_positives.assign_add(hits)
        self.false_positives.assign_add(ops.sum(predicted, axis=0) - hits)
        self.false_negatives.assign_add(ops.sum(truth, axis=0) - hits)

    def per_class(self):
        hits = ops.convert_to_tensor(self.true_positives)
        denominator = 2.0 * hits + ops.convert_to_tensor(self.false_positives) + ops.convert_to_tensor(self.false_negatives)
        present = ops.greater(denominator, 0.0)
        dice = ops.where(present, 2.0 * hits / ops.maximum(denominator, 1e-12), float("nan"))
        return dice, present

    def result(self):
        dice, present = self.per_class()
        count = ops.sum(ops.cast(present, "float32"))
        mean = ops.sum(ops.where(present, dice, 0.0)) / ops.maximum(count, 1.0)
        out = {self.name: mean}
        for index, class_name in enumerate(self.class_names):
            out[f"{self.name}_{_key(class_name)}"] = dice[index]
        return out

    def reset_state(self):
        for variable in (self.true_positives, self.false_positives, self.false_negatives):
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def get_config(self):
        return {"num_classes": self.num_classes, "class_names": self.class_names, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="attention_zoo")
class TopKAccuracy(keras.metrics.TopKCategoricalAccuracy):
    """Top-k accuracy for one-hot targets that also takes float16 scores (mixed precision):
    TensorFlow's in_top_k accepts float32 only."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, ops.cast(y_pred, "float32"), sample_weight)


@keras.saving.register_keras_serializable(package="attention_zoo")
class SparseTopKAccuracy(keras.metrics.SparseTopKCategoricalAccuracy):
    """Top-k accuracy for class-index targets that also takes float16 scores."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, ops.cast(y_pred, "float32"), sample_weight)


def classification_metrics(num_classes, one_hot):
    """Accuracy, and top-5 accuracy where there are more than five classes (with five or fewer
    it is always 1 and says nothing)."""
    if one_hot:
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if num_classes > 5:
            metrics.append(TopKAccuracy(k=5, name="top5_accuracy"))
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if num_classes > 5:
            metrics.append(SparseTopKAccuracy(k=5, name="top5_accuracy"))
    return metrics


def segmentation_metrics(num_classes, class_names, one_hot):
    """Mean IoU over classes (Keras' MeanIoU on the arg-max) and Dice per class and mean."""
    return [
        keras.metrics.MeanIoU(num_classes, name="mean_iou", sparse_y_true=not one_hot, sparse_y_pred=False),
        DiceScore(num_classes, class_names, name="dice"),
    ]
