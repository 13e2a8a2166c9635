"""Converted weights load the same on TensorFlow, JAX and PyTorch backends."""

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo import pretrained
from tests.pretrained.fakes import randomize, save_safetensors, sha256_of, timm_state_dict, weights_of

pytestmark = pytest.mark.every_backend

SHAPE = (64, 64, 3)
SMALL = dict(layers=(1, 1, 1, 1), input_shape=SHAPE)
IMAGES = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32")


def test_a_downloaded_checkpoint_reproduces_its_model_and_a_new_head_stays_initialised(registered, tmp_path):
    reference = randomize(attention_zoo.get("se_resnet18", **SMALL), seed=1)
    path = save_safetensors(timm_state_dict(reference), tmp_path / "model.safetensors")
    registered("se_resnet18", "test_backend", url=path.as_uri(), file_format="safetensors", converter="timm",
               sha256=sha256_of(path))

    model = attention_zoo.get("se_resnet18", weights="test_backend", **SMALL)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(IMAGES)), keras.ops.convert_to_numpy(reference(IMAGES)), rtol=1e-5, atol=1e-5
    )

    fresh = attention_zoo.get("se_resnet18", num_classes=4, **SMALL)
    head = keras.ops.convert_to_numpy(fresh.get_layer("fc").kernel).copy()
    pretrained.load_weights(fresh, "test_backend")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh.get_layer("fc").kernel), head)
    loaded, expected = weights_of(fresh), weights_of(reference)
    assert all(np.array_equal(loaded[p], expected[p]) for p in loaded if not p.startswith("fc/"))
