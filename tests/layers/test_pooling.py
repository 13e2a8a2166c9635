"""The gates' pooling and their small convolution, written for speed, compute exactly what
the plain `keras.ops` reductions and convolution compute."""

import contextlib

import keras
import numpy as np
import pytest
from keras import ops

from attention_zoo.layers.pooling import conv_to_one_channel, global_pool
from attention_zoo.layers.tracing import plain_graph

pytestmark = pytest.mark.every_backend


@pytest.mark.parametrize("exporting", [False, True], ids=["fast", "plain"])
@pytest.mark.parametrize("kind, reference", [("mean", np.mean), ("max", np.max)])
@pytest.mark.parametrize("shape", [(2, 5, 6, 4), (1, 1, 1, 3), (3, 7, 2, 8), (2, 56, 56, 16)])
def test_global_pool_is_the_mean_or_max_over_height_and_width(kind, reference, shape, exporting):
    maps = np.random.default_rng(0).normal(size=shape).astype("float32")
    with plain_graph() if exporting else contextlib.nullcontext():
        pooled = ops.convert_to_numpy(global_pool(maps, kind))
    np.testing.assert_allclose(pooled, reference(maps, axis=(1, 2)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["mean", "max"])
def test_global_pool_takes_maps_of_any_size_in_a_model_built_without_one(kind):
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, keras.layers.Lambda(lambda maps: global_pool(maps, kind))(inputs))
    maps = np.random.default_rng(1).normal(size=(2, 9, 5, 4)).astype("float32")
    expected = maps.mean(axis=(1, 2)) if kind == "mean" else maps.max(axis=(1, 2))
    np.testing.assert_allclose(ops.convert_to_numpy(model(maps)), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("exporting", [False, True], ids=["fast", "plain"])
@pytest.mark.parametrize(
    "height, width, channels, kernel_size",
    [(56, 56, 2, 7), (7, 9, 2, 7), (3, 5, 2, 3), (2, 2, 2, 7), (1, 1, 2, 7), (4, 6, 3, 5), (5, 5, 2, 4)],
)
def test_conv_to_one_channel_is_a_same_padded_convolution(height, width, channels, kernel_size, exporting):
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(2, height, width, channels)).astype("float32")
    kernel = rng.normal(size=(kernel_size, kernel_size, channels, 1)).astype("float32")
    expected = ops.convert_to_numpy(ops.conv(maps, kernel, padding="same"))
    single_channel_maps = [maps[..., c : c + 1] for c in range(channels)]
    with plain_graph() if exporting else contextlib.nullcontext():
        actual = ops.convert_to_numpy(conv_to_one_channel(single_channel_maps, kernel))
    assert actual.shape == (2, height, width, 1)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
