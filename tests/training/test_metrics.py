"""Segmentation metrics against values worked out by hand."""

import keras
import numpy as np
import pytest

from attention_zoo.training.metrics import DiceScore, classification_metrics, segmentation_metrics

pytestmark = pytest.mark.every_backend

# 2x3 image, 4 classes (class 3 appears nowhere).
TRUTH = np.array([[[0, 0, 1], [1, 2, 2]]])
PREDICTED = np.array([[[0, 1, 1], [1, 2, 0]]])
# Per class: TP / FP / FN = 1/1/1, 2/1/0, 1/0/1, 0/0/0.
DICE = [2 / 4, 4 / 5, 2 / 3]
IOU = [1 / 3, 2 / 3, 1 / 2]


def logits(classes, num_classes=4):
    return keras.ops.convert_to_tensor(np.eye(num_classes, dtype="float32")[classes] * 5.0 - 1.0)


def test_dice_per_class_and_mean_match_hand_computed_values():
    metric = DiceScore(4, class_names=["bg", "a", "b", "never seen"])
    metric.update_state(TRUTH[..., None], logits(PREDICTED))
    result = {key: float(value) for key, value in metric.result().items()}
    assert result["dice_bg"] == pytest.approx(DICE[0])
    assert result["dice_a"] == pytest.approx(DICE[1])
    assert result["dice_b"] == pytest.approx(DICE[2])
    # 0 / 0 for a class absent from targets and predictions: no value, left out of the mean.
    assert np.isnan(result["dice_never_seen"])
    assert result["dice"] == pytest.approx(np.mean(DICE))


def test_dice_accumulates_over_batches_like_one_big_batch():
    metric = DiceScore(4)
    metric.update_state(TRUTH[:, :1], logits(PREDICTED[:, :1]))
    metric.update_state(TRUTH[:, 1:], logits(PREDICTED[:, 1:]))
    assert float(metric.result()["dice"]) == pytest.approx(np.mean(DICE))
    metric.reset_state()
    metric.update_state(TRUTH, logits(TRUTH))
    assert float(metric.result()["dice"]) == pytest.approx(1.0)


def test_dice_reads_one_hot_targets_and_sample_weights():
    metric = DiceScore(4)
    metric.update_state(np.eye(4, dtype="float32")[TRUTH], logits(PREDICTED))
    assert float(metric.result()["dice"]) == pytest.approx(np.mean(DICE))
    weighted = DiceScore(4)
    # Weight 0 on the second row leaves row one: class 0 TP 1 FN 1; class 1 TP 1 FP 1.
    weighted.update_state(TRUTH, logits(PREDICTED), sample_weight=np.array([[[1, 1, 1], [0, 0, 0]]]))
    result = weighted.result()
    assert float(result["dice_0"]) == pytest.approx(2 / 3) and float(result["dice_1"]) == pytest.approx(2 / 3)


def test_dice_round_trips_its_config():
    metric = DiceScore(3, class_names=["pet", "background", "border"], name="dice")
    again = DiceScore.from_config(metric.get_config())
    assert again.class_names == ["pet", "background", "border"] and again.num_classes == 3


def test_mean_iou_of_the_recipes_matches_hand_computed_values():
    mean_iou, dice = segmentation_metrics(4, ["0", "1", "2", "3"], one_hot=False)
    mean_iou.update_state(TRUTH[..., None], logits(PREDICTED))
    assert float(mean_iou.result()) == pytest.approx(np.mean(IOU), abs=1e-6)
    one_hot_iou, _ = segmentation_metrics(4, ["0", "1", "2", "3"], one_hot=True)
    one_hot_iou.update_state(np.eye(4, dtype="float32")[TRUTH], logits(PREDICTED))
    assert float(one_hot_iou.result()) == pytest.approx(np.mean(IOU), abs=1e-6)


def test_classification_reports_top5_only_where_it_means_something():
    assert [m.name for m in classification_metrics(5, one_hot=True)] == ["accuracy"]
    metrics = classification_metrics(10, one_hot=True)
    assert [m.name for m in metrics] == ["accuracy", "top5_accuracy"]
    scores = np.tile(np.arange(10, dtype="float32"), (2, 1))  # class 9 first, class 5 fifth, 4 sixth
    metrics[1].update_state(np.eye(10)[[5, 4]], scores)
    assert float(metrics[1].result()) == pytest.approx(0.5)
