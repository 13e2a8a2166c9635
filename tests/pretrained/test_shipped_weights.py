"""Weights this project trained and ships in weights/: each manifest entry's file is there with
its checksum, loads by tag through `attention_zoo.get`, and still does what its entry reports
on the embedded data it was trained for."""

import numpy as np
import pytest

import attention_zoo
from attention_zoo import pretrained
from attention_zoo.pretrained import download
from attention_zoo.pretrained.errors import WeightsDownloadError
from attention_zoo.pretrained.manifest import load_manifest

SHIPPED = sorted(
    (entry.model, entry.tag)
    for model_weights in load_manifest().values()
    for entry in model_weights.weights.values()
    if entry.url.startswith(download.PROJECT_SCHEME)
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENTION_ZOO_CACHE_DIR", str(tmp_path / "cache"))


def recipe_examples(recipe, count):
    from attention_zoo.training import load_recipe
    from attention_zoo.training.deliverables import examples

    images, targets = examples(load_recipe(recipe).settings, "test", count)
    # Class labels: one-hot for classification, a (H, W, 1) class map for segmentation.
    return images, targets[..., 0] if targets.shape[-1] == 1 else np.argmax(targets, axis=-1)


def test_the_project_ships_its_trained_weights():
    assert ("stn_cnn", "cluttered_digits") in SHIPPED
    assert ("attention_unet", "shapes") in SHIPPED
    assert ("ram", "cluttered_digits") in SHIPPED
    assert ("dcn", "cluttered_digits") in SHIPPED


@pytest.mark.parametrize("model, tag", SHIPPED)
def test_each_shipped_file_is_in_weights_with_the_manifests_checksum(model, tag):
    entry = pretrained.manifest.resolve(model, tag)
    path = download.resolve_url(entry)[len("file://"):]
    assert path.endswith(f"weights/{model}.{tag}.weights.h5")
    assert download.sha256_of(path) == entry.sha256
    assert entry.license and entry.file_format == "keras"


@pytest.mark.parametrize("model, tag", SHIPPED)
def test_a_tag_alone_builds_the_model_its_weights_were_trained_as(model, tag):
    entry = pretrained.manifest.resolve(model, tag)
    built = attention_zoo.get(model, weights=tag)
    # The whole model was loaded, head included: nothing kept its random initialisation.
    assert built.pretrained_weights.head_loaded and built.pretrained_weights.loaded == len(built.weights)
    expected = attention_zoo.get(
        model, num_classes=entry.num_classes, input_shape=entry.input_shape, **entry.model_options
    )
    assert [tuple(w.shape) for w in built.weights] == [tuple(w.shape) for w in expected.weights]
    image = np.zeros((1, *entry.input_shape), "float32")
    assert np.shape(built.predict(image, verbose=0))[-1] == entry.num_classes


def test_the_callers_arguments_win_over_the_checkpoints():
    # The U-Net is fully convolutional: its shapes weights load at any input size.
    model = attention_zoo.get("attention_unet", weights="shapes", input_shape=(96, 96, 3))
    assert tuple(model.input_shape) == (None, 96, 96, 3)
    assert model.output_shape == (None, 96, 96, 4)


def test_without_weights_a_model_keeps_the_imagenet_sized_head():
    assert attention_zoo.get("stn_cnn", input_shape=(60, 60, 1)).output_shape == (None, 1000)


def test_the_quickstart_stn_loads_by_tag_and_reads_the_test_digits():
    model = attention_zoo.get("stn_cnn", weights="cluttered_digits")
    images, labels = recipe_examples("quickstart", 400)

    accuracy = np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == labels)

    reported = pretrained.manifest.resolve("stn_cnn", "cluttered_digits").reported[0]["top1"] / 100
    assert model.pretrained_weights.verified
    assert accuracy > reported - 0.05, f"{accuracy:.3f} on 400 test digits; the entry reports {reported:.3f}"


def test_the_ram_loads_by_tag_and_reads_the_test_digits_with_its_learned_glimpses():
    model = attention_zoo.get("ram", weights="cluttered_digits")
    images, labels = recipe_examples("ram_cluttered_digits", 400)

    accuracy = np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == labels)

    reported = pretrained.manifest.resolve("ram", "cluttered_digits").reported[0]["top1"] / 100
    assert accuracy > reported - 0.07, f"{accuracy:.3f} on 400 test digits; the entry reports {reported:.3f}"


def test_the_dcn_loads_by_tag_and_reads_the_test_digits_through_its_chosen_patches():
    model = attention_zoo.get("dcn", weights="cluttered_digits")
    images, labels = recipe_examples("dcn_cluttered_digits", 400)

    accuracy = np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == labels)

    reported = pretrained.manifest.resolve("dcn", "cluttered_digits").reported[0]["top1"] / 100
    assert accuracy > reported - 0.05, f"{accuracy:.3f} on 400 test digits; the entry reports {reported:.3f}"


def test_the_shapes_attention_unet_loads_by_tag_and_segments_the_test_shapes():
    model = attention_zoo.get("attention_unet", weights="shapes")
    images, masks = recipe_examples("attention_unet_shapes", 64)

    predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
    ious = []
    for label in range(4):
        union = np.sum((predicted == label) | (masks == label))
        ious.append(np.sum((predicted == label) & (masks == label)) / union)
    assert np.mean(ious) > 0.85, f"mean IoU {np.mean(ious):.3f} on 64 test images; the run measured 0.918"


def test_without_a_source_checkout_the_error_says_where_the_file_lives(monkeypatch, tmp_path):
    monkeypatch.setattr(download, "PROJECT_ROOT", str(tmp_path))
    with pytest.raises(WeightsDownloadError, match="weights ship with a source checkout"):
        attention_zoo.get("stn_cnn", weights="cluttered_digits")
