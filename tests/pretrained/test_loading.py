"""Loading weights: tags through a verified, atomic download cache; local checkpoints; head
re-initialisation; and every failure mode ending in a clear error with nothing half-loaded
and nothing corrupt left in the cache. All offline: "servers" are file:// URLs."""

import logging
import os
import socket
import sys

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo import pretrained
from attention_zoo.pretrained import loading
from tests.pretrained.fakes import randomize, save_safetensors, sha256_of, timm_state_dict, weights_of

SHAPE = (64, 64, 3)
SMALL = dict(layers=(1, 1, 1, 1), input_shape=SHAPE)
IMAGES = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32")


def outputs(model):
    return keras.ops.convert_to_numpy(model(IMAGES))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A randomised small ResNet-18 and its weights as a timm-layout .safetensors file."""
    keras.utils.clear_session()
    model = randomize(attention_zoo.get("resnet18", **SMALL), seed=1)
    path = save_safetensors(timm_state_dict(model), tmp_path_factory.mktemp("server") / "model.safetensors")
    return {"path": path, "sha256": sha256_of(path), "weights": weights_of(model), "outputs": outputs(model)}


def cache_files(isolated_cache):
    return sorted(os.listdir(isolated_cache)) if isolated_cache.exists() else []


def assert_unchanged(model, before):
    after = weights_of(model)
    assert all(np.array_equal(before[path], after[path]) for path in before)


def test_a_local_timm_checkpoint_reproduces_the_model_it_came_from(source):
    model = attention_zoo.get("resnet18", weights=str(source["path"]), **SMALL)
    np.testing.assert_allclose(outputs(model), source["outputs"], rtol=1e-5, atol=1e-5)
    assert model.pretrained_weights.loaded == len(model.weights) and model.pretrained_weights.head_loaded


def test_a_tag_downloads_verifies_converts_and_caches(source, registered, isolated_cache, monkeypatch):
    registered("resnet18", "test_verified", url=source["path"].as_uri(), file_format="safetensors",
               converter="timm", sha256=source["sha256"], default=True)
    conversions = []
    convert = loading.converters.convert
    monkeypatch.setattr(loading.converters, "convert", lambda *a, **k: conversions.append(1) or convert(*a, **k))

    model = attention_zoo.get("resnet18", weights="imagenet", **SMALL)
    np.testing.assert_allclose(outputs(model), source["outputs"], rtol=1e-5, atol=1e-5)
    info = model.pretrained_weights
    assert (info.tag, info.verified, info.sha256) == ("test_verified", True, source["sha256"])
    converted, downloaded = sorted(cache_files(isolated_cache), key=lambda name: name.endswith(".safetensors"))
    assert converted == "resnet18.test_verified.converted.h5"
    assert downloaded.startswith("resnet18.test_verified.") and downloaded.endswith(".safetensors")
    assert len(cache_files(isolated_cache)) == 2  # no temporary .part file left behind

    # Converted once: the second load reads the converted cache, even with the source gone.
    os.remove(isolated_cache / downloaded)
    again = attention_zoo.get("resnet18", weights="test_verified", num_classes=1000, **SMALL)
    np.testing.assert_allclose(outputs(again), source["outputs"], rtol=1e-5, atol=1e-5)
    assert len(conversions) == 1


def test_a_checksum_mismatch_is_refused_and_leaves_the_cache_empty(source, registered, isolated_cache):
    registered("resnet18", "test_bad_sum", url=source["path"].as_uri(), file_format="safetensors",
               converter="timm", sha256="0" * 64)
    model = attention_zoo.get("resnet18", **SMALL)
    before = weights_of(model)
    with pytest.raises(pretrained.ChecksumError, match="has SHA-256 .* but the manifest records 0000"):
        pretrained.load_weights(model, "test_bad_sum")
    assert cache_files(isolated_cache) == []
    assert_unchanged(model, before)


def test_a_truncated_download_is_caught_by_the_checksum(source, registered, isolated_cache, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(source["path"].read_bytes()[: os.path.getsize(source["path"]) // 2])
    registered("resnet18", "test_truncated", url=truncated.as_uri(), file_format="safetensors",
               converter="timm", sha256=source["sha256"])
    with pytest.raises(pretrained.ChecksumError):
        attention_zoo.get("resnet18", weights="test_truncated", **SMALL)
    assert cache_files(isolated_cache) == []


def test_a_truncated_unverified_download_is_reported_and_deleted(source, registered, isolated_cache, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(source["path"].read_bytes()[:100_000])
    registered("resnet18", "test_truncated_unverified", url=truncated.as_uri(), file_format="safetensors", converter="timm")
    weights = pretrained.Weights("test_truncated_unverified", allow_unverified=True)
    with pytest.raises(pretrained.CorruptWeightsError, match="truncated or corrupt.*deleted; retry"):
        attention_zoo.get("resnet18", weights=weights, **SMALL)
    assert cache_files(isolated_cache) == []


def test_unverified_weights_need_explicit_permission(source, registered, monkeypatch):
    registered("resnet18", "test_unverified", url=source["path"].as_uri(), file_format="safetensors", converter="timm")
    with pytest.raises(pretrained.UnverifiedWeightsError, match="allow_unverified=True.*ATTENTION_ZOO_ALLOW_UNVERIFIED=1"):
        attention_zoo.get("resnet18", weights="test_unverified", **SMALL)
    model = attention_zoo.get("resnet18", weights=pretrained.Weights("test_unverified", allow_unverified=True), **SMALL)
    assert model.pretrained_weights.verified is False
    np.testing.assert_allclose(outputs(model), source["outputs"], rtol=1e-5, atol=1e-5)
    monkeypatch.setenv("ATTENTION_ZOO_ALLOW_UNVERIFIED", "1")
    attention_zoo.get("resnet18", weights="test_unverified", **SMALL)


def test_no_network_gives_an_error_that_says_what_to_do(registered, isolated_cache):
    # A port just released by the OS has no listener: the connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.safetensors"
    registered("resnet18", "test_offline", url=url, file_format="safetensors", converter="timm", sha256="1" * 64)
    expected = rf"could not download http://127\.0\.0\.1:{port}/.*network.*yourself.*weights="
    with pytest.raises(pretrained.WeightsDownloadError, match=expected):
        attention_zoo.get("resnet18", weights="test_offline", **SMALL)
    assert cache_files(isolated_cache) == []


def test_a_web_page_instead_of_a_checkpoint_is_refused(registered, isolated_cache, tmp_path):
    page = tmp_path / "download"
    page.write_text("<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses.</body></html>")
    registered("resnet18", "test_html", url=page.as_uri(), file_format="pytorch", converter="official_cbam")
    with pytest.raises(pretrained.CorruptWeightsError, match="web page"):
        attention_zoo.get("resnet18", weights=pretrained.Weights("test_html", allow_unverified=True), **SMALL)
    assert cache_files(isolated_cache) == []


def test_a_damaged_cache_is_rebuilt(source, registered, isolated_cache):
    registered("resnet18", "test_damaged", url=source["path"].as_uri(), file_format="safetensors",
               converter="timm", sha256=source["sha256"])
    attention_zoo.get("resnet18", weights="test_damaged", **SMALL)
    for name in cache_files(isolated_cache):  # flip bytes in both the converted and the source file
        with open(isolated_cache / name, "r+b") as handle:
            handle.seek(64)
            handle.write(b"\x00" * 256)
    model = attention_zoo.get("resnet18", weights="test_damaged", **SMALL)
    np.testing.assert_allclose(outputs(model), source["outputs"], rtol=1e-5, atol=1e-5)
    assert sha256_of(next(isolated_cache.glob("*.safetensors"))) == source["sha256"]


def test_an_unknown_tag_or_missing_file_gets_a_clear_error():
    with pytest.raises(pretrained.UnknownWeightsError, match="unknown weights tag 'imagenet21k'.*'tv_in1k'"):
        attention_zoo.get("resnet18", weights="imagenet21k", **SMALL)
    with pytest.raises(ValueError, match="is not a file"):
        attention_zoo.get("resnet18", weights="/no/such/model.safetensors", **SMALL)
    with pytest.raises(pretrained.UnknownWeightsError, match="no published weights"):
        attention_zoo.get("eca_resnet50", weights="imagenet", layers=(1, 1, 1, 1), input_shape=SHAPE)


def test_weights_for_another_architecture_name_the_first_misfit_and_change_nothing(source, tmp_path):
    se_model = randomize(attention_zoo.get("se_resnet18", **SMALL), seed=2)
    se_path = save_safetensors(timm_state_dict(se_model), tmp_path / "se.safetensors")

    model = attention_zoo.get("resnet18", **SMALL)
    before = weights_of(model)
    surplus = r"'layer1\.0\.se\.fc1\.(bias|weight)'.*no counterpart in the model.*left unchanged"
    with pytest.raises(pretrained.WeightsMismatchError, match=surplus):
        pretrained.load_weights(model, str(se_path))
    assert_unchanged(model, before)

    se_target = attention_zoo.get("se_resnet18", **SMALL)
    before = weights_of(se_target)
    missing = r"weight 'layer1_0_se/reduce/kernel' .* no counterpart in the checkpoint"
    with pytest.raises(pretrained.WeightsMismatchError, match=missing):
        pretrained.load_weights(se_target, str(source["path"]))
    assert_unchanged(se_target, before)

    grey = attention_zoo.get("resnet18", layers=(1, 1, 1, 1), input_shape=(64, 64, 1))
    shape = r"'stem_conv1/conv/kernel' has shape \(7, 7, 1, 64\).*'conv1\.weight' gives \(7, 7, 3, 64\)"
    with pytest.raises(pretrained.WeightsMismatchError, match=shape):
        pretrained.load_weights(grey, str(source["path"]))


def test_a_tensor_with_no_place_in_the_layout_is_an_error(source, tmp_path):
    state = pretrained.read_state_dict(source["path"])
    state["layer1.0.drop_block.weight"] = np.ones(3, "float32")
    path = save_safetensors(state, tmp_path / "extra.safetensors")
    leftover = "no place in attention_zoo's ResNet layout: 'layer1.0.drop_block.weight'"
    with pytest.raises(pretrained.WeightsMismatchError, match=leftover):
        attention_zoo.get("resnet18", weights=str(path), **SMALL)


def test_another_num_classes_loads_the_backbone_and_keeps_the_new_head(source, caplog):
    keras.utils.set_random_seed(3)
    fresh = attention_zoo.get("resnet18", num_classes=10, **SMALL)
    head_before = {p: w for p, w in weights_of(fresh).items() if p.startswith("fc/")}
    with caplog.at_level(logging.WARNING, logger="attention_zoo.pretrained"):
        pretrained.load_weights(fresh, str(source["path"]))
    assert "classifier has 1000 classes" in caplog.text and "keeps its initialisation" in caplog.text
    loaded = weights_of(fresh)
    for path, value in source["weights"].items():
        if path.startswith("fc/"):
            np.testing.assert_array_equal(loaded[path], head_before[path])
        else:
            np.testing.assert_array_equal(loaded[path], value)
    assert fresh.pretrained_weights.head_loaded is False and outputs(fresh).shape == (2, 10)


def test_headless_and_feature_models_load_the_backbone(source):
    backbone = attention_zoo.get("resnet18", weights=str(source["path"]), include_top=False, pooling="avg", **SMALL)
    for variable in backbone.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), source["weights"][variable.path])
    features = attention_zoo.get("resnet18", weights=str(source["path"]), features_only=True, **SMALL)
    assert set(features(IMAGES)) == {"P2", "P3", "P4", "P5"}
    assert features.pretrained_weights.sha256 == backbone.pretrained_weights.sha256


def test_a_keras_weights_file_loads_and_a_misfit_restores_the_model(source, tmp_path):
    model = attention_zoo.get("resnet18", weights=str(source["path"]), **SMALL)
    path = tmp_path / "resnet18.weights.h5"
    model.save_weights(path)
    reloaded = attention_zoo.get("resnet18", weights=str(path), **SMALL)
    np.testing.assert_allclose(outputs(reloaded), source["outputs"], rtol=1e-6)

    other = attention_zoo.get("resnet18", num_classes=7, **SMALL)
    before = weights_of(other)
    with pytest.raises(pretrained.WeightsMismatchError, match="loads only into the architecture"):
        pretrained.load_weights(other, path)
    assert_unchanged(other, before)


def test_project_trained_keras_weights_register_and_download_like_published_ones(source, registered, tmp_path):
    trained = attention_zoo.get("resnet18", weights=str(source["path"]), num_classes=1000, **SMALL)
    path = tmp_path / "resnet18.synthetic.weights.h5"
    trained.save_weights(path)
    registered("resnet18", "test_project", url=path.as_uri(), file_format="keras", sha256=sha256_of(path))
    model = attention_zoo.get("resnet18", weights="test_project", **SMALL)
    np.testing.assert_allclose(outputs(model), source["outputs"], rtol=1e-6)
    assert model.pretrained_weights.verified


@pytest.mark.every_backend  # the NaN fill and the skip_mismatch load, on every backend
@pytest.mark.parametrize("name, options", [("resnet18", SMALL), ("dcn", {"input_shape": (32, 32, 1)})],
                         ids=["functional", "subclassed"])
def test_a_project_trained_tag_loads_into_another_class_count_with_a_new_head(name, options, registered, tmp_path,
                                                                              caplog):
    trained = randomize(attention_zoo.get(name, num_classes=10, **options), seed=4)
    path = tmp_path / f"{name}.weights.h5"
    trained.save_weights(path)
    registered(name, "test_project", url=path.as_uri(), file_format="keras", sha256=sha256_of(path), num_classes=10,
               input_shape=options["input_shape"])
    keras.utils.set_random_seed(5)
    fresh = attention_zoo.get(name, num_classes=3, **options)
    initial = weights_of(fresh)
    with caplog.at_level(logging.WARNING, logger="attention_zoo.pretrained"):
        pretrained.load_weights(fresh, "test_project")
    assert "have 10 classes, the model 3: loaded everything but the head" in caplog.text
    head = {variable.path for variable in fresh.weights if tuple(variable.shape)[-1:] == (3,)}
    assert head and len(head) == 2  # the classifier's kernel and bias
    source, loaded = weights_of(trained), weights_of(fresh)
    for path_, value in loaded.items():
        np.testing.assert_array_equal(value, initial[path_] if path_ in head else source[path_])
    assert fresh.pretrained_weights.head_loaded is False
    assert fresh.pretrained_weights.loaded == len(fresh.weights) - 2


def test_a_project_trained_tag_that_differs_beyond_its_head_changes_nothing(registered, tmp_path):
    trained = attention_zoo.get("resnet18", num_classes=10, **SMALL)
    path = tmp_path / "resnet18.weights.h5"
    trained.save_weights(path)
    registered("resnet18", "test_project", url=path.as_uri(), file_format="keras", sha256=sha256_of(path),
               num_classes=10)
    other = attention_zoo.get("resnet18", num_classes=3, input_shape=SHAPE, layers=(2, 1, 1, 1))
    before = weights_of(other)
    with pytest.raises(pretrained.WeightsMismatchError, match="did not load and is not part of a 3-class head"):
        pretrained.load_weights(other, "test_project")
    assert_unchanged(other, before)


def test_a_pytorch_file_without_torch_says_how_to_read_it(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    path.write_bytes(b"\x80\x02" + b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="needs torch.*pip install torch"):
        attention_zoo.get("resnet18", weights=str(path), **SMALL)


def test_the_cbam_spatial_kernel_follows_the_models_pooling_order(tmp_path):
    timm_layout = dict(mlp_bias=False, pool_order="mean_max")
    reference = randomize(attention_zoo.get("cbam_resnet18", attention_options=timm_layout, **SMALL), seed=4)
    path = save_safetensors(timm_state_dict(reference), tmp_path / "cbam.safetensors")
    official_order = attention_zoo.get("cbam_resnet18", weights=str(path), attention_options=dict(mlp_bias=False), **SMALL)
    np.testing.assert_allclose(outputs(official_order), outputs(reference), rtol=1e-5, atol=1e-5)
    kernel = keras.ops.convert_to_numpy(official_order.get_layer("layer1_0_cbam").spatial_attention.conv.kernel)
    original = keras.ops.convert_to_numpy(reference.get_layer("layer1_0_cbam").spatial_attention.conv.kernel)
    np.testing.assert_array_equal(kernel, original[:, :, ::-1, :])


def test_the_eca_net_authors_layout_loads(tmp_path):
    reference = randomize(attention_zoo.get("eca_resnet50", **SMALL), seed=5)
    state = {f"module.{key}": value for key, value in timm_state_dict(reference, eca_module="eca").items()}
    path = save_safetensors(state, tmp_path / "eca_resnet50_k3557.safetensors")
    model = attention_zoo.get("eca_resnet50", weights=str(path), **SMALL)
    np.testing.assert_allclose(outputs(model), outputs(reference), rtol=1e-5, atol=1e-5)


def test_legacy_senet154_weights_refuse_a_padded_stem_before_downloading(isolated_cache):
    model = attention_zoo.get("senet154", **SMALL)
    with pytest.raises(pretrained.WeightsMismatchError, match="stem_pool='ceil'"):
        pretrained.load_weights(model, pretrained.Weights("legacy_in1k", allow_unverified=True))
    assert cache_files(isolated_cache) == []


def test_preprocessing_travels_with_the_weights(source, registered):
    prep = {"input_size": [224, 224], "crop_pct": 0.875, "interpolation": "bilinear"}
    registered("resnet18", "test_prep", url=source["path"].as_uri(), file_format="safetensors",
               converter="timm", sha256=source["sha256"], preprocessing=prep)
    model = attention_zoo.get("resnet18", weights="test_prep", **SMALL)
    assert model.pretrained_weights.preprocessing == pretrained.preprocessing("resnet18", "test_prep")
    assert model.pretrained_weights.preprocessing.crop_pct == 0.875


def test_prepare_images_crops_the_reference_region_and_normalises():
    prep = pretrained.Preprocessing(input_size=(224, 224), crop_pct=0.875)
    image = np.random.default_rng(6).uniform(0, 255, size=(256, 320, 3)).astype("float32")
    batch = keras.ops.convert_to_numpy(prep(image))
    # shorter side 256 = 224 / 0.875: the crop is the central 224x224, no resampling
    expected = (image[16:240, 48:272] / 255.0 - np.array(prep.mean)) / np.array(prep.std)
    assert batch.shape == (1, 224, 224, 3)
    np.testing.assert_allclose(batch[0], expected, rtol=1e-5, atol=1e-5)

    grey = np.full((2, 300, 400, 3), 255 * np.array(prep.mean), "float32")
    resized = keras.ops.convert_to_numpy(pretrained.prepare_images(grey, prep, input_size=(160, 160)))
    assert resized.shape == (2, 160, 160, 3)
    np.testing.assert_allclose(resized, 0.0, atol=1e-4)
