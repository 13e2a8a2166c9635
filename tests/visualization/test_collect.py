"""Collecting attention maps by layer: every kind of zoo attention layer in one small model,
read into NumPy with the right kind, shape, range and geometry, on every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers import (
    CBAM,
    BottleneckAttention,
    ChannelSelfAttention,
    EfficientChannelAttention,
    NonLocalBlock,
    PositionAttention,
    SelectiveKernel,
    SoftAttentionPooling,
    SqueezeExcite,
)
from attention_zoo.layers.base import AttentionLayer
from attention_zoo.models.common import attention_outputs
from attention_zoo.visualization import collect_attention, query_cell, resize_maps
from tests.helpers import random_inputs, randomize_weights

pytestmark = pytest.mark.every_backend

IMAGES = random_inputs((2, 32, 32, 3), seed=3, low=0.0, high=1.0)
KINDS = {
    "se": "channel_weights",
    "eca": "channel_weights",
    "cbam/channel": "channel_weights",
    "cbam/spatial": "spatial_map",
    "bam/channel": "channel_weights",
    "bam/spatial": "spatial_map",
    "bam/gate": "gate",
    "sk": "path_weights",
    "non_local": "self_attention",
    "position": "self_attention",
    "channel_self": "self_attention",
    "pool": "spatial_map",
}


def every_attention_model(size=None):
    """Stride-2 stem, then every gate, SK and self-attention at 16x16, DANet and attention
    pooling at 8x8. `size=None` leaves the spatial sizes dynamic, as in the zoo's ResNets."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="stem")(inputs)
    x, _ = SqueezeExcite(16, reduction=4, return_attention=True, name="se")(x)
    x, _ = EfficientChannelAttention(16, return_attention=True, name="eca")(x)
    x, _ = CBAM(16, reduction=4, spatial_gamma_init="ones", return_attention=True, name="cbam")(x)
    x, _ = BottleneckAttention(16, reduction=4, return_attention=True, name="bam")(x)
    x, _ = SelectiveKernel(16, rd_channels=8, return_attention=True, name="sk")(x)
    x, _ = NonLocalBlock(16, subsample=True, return_attention=True, name="non_local")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="down")(x)
    x, _ = PositionAttention(16, return_attention=True, name="position")(x)
    x, _ = ChannelSelfAttention(16, return_attention=True, name="channel_self")(x)
    x, _ = SoftAttentionPooling(16, return_attention=True, name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(x), name="every_attention")
    randomize_weights(model, seed=1, scale=0.5)
    return model


def small_static_model():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", name="stem")(inputs)
    x, _ = CBAM(8, reduction=2, spatial_gamma_init="ones", return_attention=True, name="cbam")(x)
    model = keras.Model(inputs, x, name="small_static")
    randomize_weights(model, seed=2, scale=0.5)
    return model


@pytest.fixture(scope="module")
def model():
    return every_attention_model()


@pytest.fixture(scope="module")
def maps(model):
    return collect_attention(model, IMAGES, query=(20, 6))


def test_every_attention_layer_is_named_in_order_and_tagged_with_its_kind(maps):
    assert list(maps) == list(KINDS)
    assert {key: m.kind for key, m in maps.items()} == KINDS
    assert maps["cbam/spatial"].layer == "cbam" and maps["cbam/spatial"].part == "spatial"
    assert maps["sk"].layer_class == "SelectiveKernel"
    assert all(isinstance(m.values, np.ndarray) for m in maps.values())


def test_stride_and_stage_come_from_the_feature_grid_even_when_sizes_are_dynamic(maps):
    strides = {key: m.stride for key, m in maps.items()}
    assert strides == {key: (2.0 if key in list(KINDS)[:9] else 4.0) for key in KINDS}
    assert [m.stage for m in maps.values()] == [0] * 9 + [1] * 3
    assert maps["se"].feature_size == (16, 16) and maps["pool"].feature_size == (8, 8)


def test_channel_gates_are_probabilities_per_channel(maps):
    for key in ("se", "eca", "cbam/channel"):
        gates = maps[key].values
        assert gates.shape == (2, 16)
        assert gates.min() >= 0.0 and gates.max() <= 1.0
        assert gates.std() > 1e-3, f"{key}: randomised weights must give gates that differ"
        assert maps[key].upsampled is None
    # BAM's channel branch is a logit: only its product with the spatial branch is a gate.
    assert maps["bam/channel"].extras["logits"] is True
    assert maps["bam/channel"].values.min() < 0.0


def test_spatial_maps_are_upsampled_to_the_input_resolution(maps):
    for key, low, high in (("cbam/spatial", 0.0, 1.0), ("bam/gate", 0.0, 1.0), ("pool", 0.0, 1.0)):
        part = maps[key]
        grid = (16, 16) if key != "pool" else (8, 8)
        assert part.values.shape == (2, *grid)
        assert part.upsampled.shape == (2, 32, 32)
        assert low <= part.values.min() and part.values.max() <= high
        assert part.values.std() > 1e-4
        # Bilinear upsampling stays within the range of the grid values and keeps their mean.
        assert part.upsampled.min() >= part.values.min() - 1e-6
        assert part.upsampled.max() <= part.values.max() + 1e-6
        np.testing.assert_allclose(part.upsampled.mean(axis=(1, 2)), part.values.mean(axis=(1, 2)), rtol=0.05)
    np.testing.assert_allclose(maps["pool"].values.sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_selective_kernel_weights_sum_to_one_over_the_paths(maps):
    weights = maps["sk"].values
    assert weights.shape == (2, 2, 16)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert maps["sk"].extras["path_labels"] == ["3x3", "3x3 dilation 2 (5x5 field)"]


def test_self_attention_is_the_row_of_the_query_position_and_sums_to_one_over_keys(model, maps):
    raw = keras.Model(model.input, attention_outputs(model)["non_local"]).predict_on_batch(IMAGES)
    raw = np.asarray(raw)  # (batch, heads, 256 queries, 64 subsampled keys)
    part = maps["non_local"]
    assert part.extras["query_cell"] == (10, 3) == query_cell((20, 6), (32, 32), (16, 16))
    assert part.values.shape == (2, 8, 8)
    np.testing.assert_allclose(part.values.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(part.values, raw[:, :, 10 * 16 + 3].mean(axis=1).reshape(2, 8, 8), rtol=1e-5, atol=1e-7)
    # Each pooled key covers 2x2 cells of the query grid; spread over them the map still sums to one.
    assert part.extras["feature_map"].shape == (2, 16, 16)
    np.testing.assert_allclose(part.extras["feature_map"].sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert part.upsampled.shape == (2, 32, 32)
    position = maps["position"]
    assert position.values.shape == (2, 8, 8)
    np.testing.assert_allclose(position.values.sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_another_query_position_gives_another_map(model, maps):
    other = collect_attention(model, IMAGES, layers=["non_local"], query=(2, 30))
    assert list(other) == ["non_local"]
    assert other["non_local"].extras["query_cell"] == (1, 15)
    assert not np.allclose(other["non_local"].values, maps["non_local"].values)


def test_the_default_query_is_the_image_centre(model):
    part = collect_attention(model, IMAGES, layers="position")["position"]
    assert part.extras["query"] == (16, 16) and part.extras["query_cell"] == (4, 4)


def test_channel_self_attention_is_kept_whole(maps):
    part = maps["channel_self"]
    assert part.values.shape == (2, 16, 16) and part.extras["axis"] == "channels"
    np.testing.assert_allclose(part.values.sum(axis=-1), 1.0, rtol=1e-5)
    assert part.upsampled is None


def test_layers_selects_whole_layers_or_single_parts(model):
    chosen = collect_attention(model, IMAGES, layers=["cbam", "bam/gate"])
    assert list(chosen) == ["cbam/channel", "cbam/spatial", "bam/gate"]
    assert chosen["cbam/spatial"].values.shape == (2, 16, 16)


def test_an_unknown_layer_is_an_error_that_lists_the_attention_layers(model):
    expected = r"no attention map named 'cbma'.*Its attention layers: se, eca, cbam.*Closest: cbam"
    with pytest.raises(ValueError, match=expected):
        collect_attention(model, IMAGES, layers=["cbma"])
    with pytest.raises(ValueError, match="no attention map matches 'cbam/gate'"):
        collect_attention(model, IMAGES, layers=["cbam/gate"])


def test_bad_images_and_queries_are_clear_errors(model):
    with pytest.raises(ValueError, match="expects images with 3 channels"):
        collect_attention(model, np.zeros((1, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match="one image .* or a batch"):
        collect_attention(model, np.zeros((32, 32), "float32"))
    with pytest.raises(ValueError, match=r"query \(40, 3\) lies outside the 32x32 image"):
        collect_attention(model, IMAGES, query=(40, 3))


def test_a_model_with_static_sizes_reads_its_grid_from_the_graph_and_takes_one_image():
    model = small_static_model()
    maps = collect_attention(model, IMAGES[0])  # one image (H, W, C) is a batch of one
    assert list(maps) == ["cbam/channel", "cbam/spatial"]
    assert maps["cbam/spatial"].values.shape == (1, 8, 8) and maps["cbam/spatial"].upsampled.shape == (1, 32, 32)
    assert maps["cbam/channel"].stride == 4.0 and maps["cbam/channel"].feature_size == (8, 8)
    with pytest.raises(ValueError, match="was built for 32x32 images"):
        collect_attention(model, random_inputs((1, 48, 48, 3)))


def test_upsampling_puts_each_cell_on_the_pixels_it_was_computed_from():
    grid = np.zeros((1, 4, 4), "float32")
    grid[0, 1, 2] = 1.0  # stride 4: input rows 4..7, columns 8..11
    up = resize_maps(grid, (16, 16))
    assert up.shape == (1, 16, 16)
    rows, cols = np.nonzero(up[0] == up[0].max())
    assert set(rows) <= set(range(4, 8)) and set(cols) <= set(range(8, 12))
    np.testing.assert_allclose(resize_maps(np.full((2, 3, 5), 0.25, "float32"), (12, 20)), 0.25)


class UnregisteredGates(AttentionLayer):
    """A layer no handler knows: its maps are read from their structure and shapes."""

    def attend(self, inputs, training=None):
        spatial = ops.sigmoid(ops.mean(inputs, axis=-1, keepdims=True))
        channel = ops.sigmoid(ops.mean(inputs, axis=(1, 2)))
        mask = ops.sigmoid(inputs)
        return inputs * mask, {"channel": channel, "spatial": spatial, "mask": mask}

    def compute_output_shape(self, input_shape):
        channel, spatial = (input_shape[0], input_shape[-1]), (*input_shape[:3], 1)
        return input_shape, {"channel": channel, "spatial": spatial, "mask": input_shape}


def test_maps_of_layers_without_a_handler_are_read_from_their_shapes():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x, _ = UnregisteredGates(return_attention=True, name="custom")(x)
    model = keras.Model(inputs, x)
    maps = collect_attention(model, random_inputs((2, 16, 16, 3)))
    assert {key: m.kind for key, m in maps.items()} == {
        "custom/channel": "channel_weights",
        "custom/mask": "mask",
        "custom/spatial": "spatial_map",
    }
    assert maps["custom/mask"].values.shape == (2, 8, 8, 8)
    assert maps["custom/mask"].upsampled.shape == (2, 16, 16)
    assert maps["custom/spatial"].upsampled.shape == (2, 16, 16)
