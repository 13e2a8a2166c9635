"""Exported files keep LiteRT's CPU delegate (XNNPACK) on one partition: every attention block
converts to ops XNNPACK runs, so no op falls back to LiteRT's reference kernels and the
graph is not cut at each block. The report's `delegation` says how the file was taken."""

import keras
import pytest

import attention_zoo
from attention_zoo.export import export_tflite
from attention_zoo.layers.conv_bn import ConvBN
from attention_zoo.layers.grouped_conv import formulation
from tests.helpers import randomize_weights


class EveryOtherPixel(keras.layers.Layer):
    def call(self, inputs):
        return inputs[:, ::2, ::2, :]


def test_the_report_names_the_ops_that_xnnpack_leaves_behind(export_dir):
    inputs = keras.Input((16, 16, 4))
    features = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    outputs = keras.layers.Conv2D(4, 3, padding="same")(EveryOtherPixel()(features))
    report = export_tflite(keras.Model(inputs, outputs), export_dir / "strided.tflite")
    # XNNPACK has no strided slice: the slice splits the graph into two partitions.
    assert report.delegation == {"partitions": 2, "undelegated_ops": {"STRIDED_SLICE": 1}}


# Float32 files of every model are checked in test_every_model. In int8 the gates must also
# keep scales XNNPACK accepts: random (trained-like) weights, since a zero-initialised last BN
# makes the SE / CBAM gates multiply constant zeros, whose degenerate scales XNNPACK declines.
@pytest.mark.parametrize("name", ["se_resnet18", "cbam_resnet18", "sk_resnet18", "attention56_cifar"])
def test_int8_attention_blocks_stay_in_one_xnnpack_partition(name, export_dir):
    model = attention_zoo.get(name, num_classes=10, input_shape=(32, 32, 3))
    randomize_weights(model)
    report = export_tflite(model, export_dir / f"{name}.tflite", quantize="int8", representative_data="synthetic:2")
    assert report.delegation == {"partitions": 1, "undelegated_ops": {}}


def test_exports_trace_the_plain_graph_not_keras_tensorflow_speedups(export_dir):
    """In Keras on TensorFlow this ConvBN scales its small output instead of its large kernel and
    runs its groups of 4 channels through TensorFlow's own grouped kernel (or, without one, as a
    depthwise convolution and a sum); the file gets one grouped convolution with the BatchNorm
    folded in, which XNNPACK runs faster than the rewrite."""
    inputs = keras.Input((4, 4, 16))
    layer = ConvBN(64, 3, padding="same", groups=4, activation="relu")
    model = keras.Model(inputs, layer(inputs))
    randomize_weights(model)
    assert formulation((1, 4, 4, 16), tuple(layer.conv.kernel.shape)) in ("tensorflow", "depthwise")
    assert not layer.folds_into_kernel((1, 4, 4, 16))

    report = export_tflite(model, export_dir / "grouped.tflite")

    assert report.ops == ["CONV_2D"]
    assert report.delegation == {"partitions": 1, "undelegated_ops": {}}
