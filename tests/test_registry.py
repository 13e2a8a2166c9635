"""The factory API: finding, describing and building models, and clear errors for bad input."""

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.models.resnet import ResNetSpec, build_resnet
from tests.helpers import random_inputs

IMAGES = random_inputs((2, 64, 64, 3))


def test_the_required_models_are_registered():
    required = (
        "resnet18 resnet34 resnet50 resnet101 resnet152 resnext50_32x4d se_resnet18 se_resnet34 se_resnet50 "
        "se_resnet101 se_resnet152 se_resnext50_32x4d se_resnext101_32x4d senet154 legacy_se_resnet50 "
        "legacy_se_resnet101 legacy_se_resnet152 legacy_se_resnext50_32x4d cbam_resnet18 cbam_resnet34 "
        "cbam_resnet50 cbam_resnet101 bam_resnet50 bam_resnet101 eca_resnet50 eca_resnet101 sk_resnet18 "
        "sk_resnet34 sk_resnet50 sknet50 sknet101"
    ).split()
    assert set(required) <= set(attention_zoo.list_models())


def test_list_models_filters_with_shell_wildcards():
    assert attention_zoo.list_models("cbam_*") == ["cbam_resnet101", "cbam_resnet18", "cbam_resnet34", "cbam_resnet50"]
    assert attention_zoo.list_models("*resnext50*") == [
        "legacy_se_resnext50_32x4d",
        "resnext50_32x4d",
        "se_resnext50_32x4d",
    ]
    assert attention_zoo.list_models("nothing*") == []


def test_model_info_describes_paper_reference_figures_and_citation():
    info = attention_zoo.model_info("se_resnet50")
    assert info.family == "resnet"
    assert info.paper.title == "Squeeze-and-Excitation Networks"
    assert info.paper.url.startswith("https://arxiv.org/")
    assert info.params == 28_088_024
    assert info.gmacs == pytest.approx(4.13)
    assert info.reported["imagenet_top1_error"] == 23.29
    assert info.citation.startswith("@inproceedings{hu2018senet")


def test_unknown_name_lists_the_closest_registered_names():
    with pytest.raises(attention_zoo.UnknownModelError, match="Closest registered names: cbam_resnet50"):
        attention_zoo.get("cbam_resnet5")
    with pytest.raises(ValueError, match="Unknown model 'transformer'"):
        attention_zoo.model_info("transformer")


def test_input_smaller_than_the_total_stride_names_the_model_and_minimum_size():
    with pytest.raises(ValueError, match="cbam_resnet50 needs inputs of at least 32x32"):
        attention_zoo.get("cbam_resnet50", input_shape=(16, 16, 3))
    model = attention_zoo.get("resnet18")
    with pytest.raises(ValueError, match="resnet18 needs images of at least 32x32"):
        model(random_inputs((1, 16, 40, 3)))


def test_wrong_rank_or_channels_say_what_was_expected():
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, channels\)"):
        attention_zoo.get("resnet18", input_shape=(64, 64))
    model = attention_zoo.get("resnet18")
    with pytest.raises(ValueError, match="resnet18 expects images with 3 channels"):
        model(random_inputs((1, 64, 64, 1)))
    with pytest.raises(ValueError, match=r"Expected shape \(None, None, None, 3\)"):
        model(random_inputs((64, 64, 3)))


def test_other_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="unknown option"):
        attention_zoo.get("resnet18", attn="se")
    with pytest.raises(ValueError, match="pooling must be one of"):
        attention_zoo.get("resnet18", include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        attention_zoo.get("resnet18", num_classes=0)
    with pytest.raises(ValueError, match="is not a file"):
        attention_zoo.get("resnet18", weights="/nonexistent/weights.h5")


def test_other_channel_counts_build_for_training_from_scratch():
    model = attention_zoo.get("resnet18", input_shape=(64, 64, 1), num_classes=2)
    assert model(random_inputs((1, 64, 64, 1))).shape == (1, 2)


@pytest.mark.parametrize("pooling, shape", [(None, (2, 2, 2, 512)), ("avg", (2, 512)), ("max", (2, 512))])
def test_without_top_pooling_follows_keras_applications(pooling, shape):
    model = attention_zoo.get("resnet18", include_top=False, pooling=pooling)
    assert model(IMAGES).shape == shape


def test_features_only_gives_strides_4_8_16_32():
    model = attention_zoo.get("cbam_resnet18", features_only=True)
    features = model(IMAGES)
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "P2": (2, 16, 16, 64),
        "P3": (2, 8, 8, 128),
        "P4": (2, 4, 4, 256),
        "P5": (2, 2, 2, 512),
    }


def test_pyramid_outputs_and_attention_maps_survive_a_keras_file_round_trip(tmp_path):
    model = attention_zoo.get("bam_resnet50", num_classes=3)
    model.save(tmp_path / "bam.keras")
    loaded = keras.saving.load_model(tmp_path / "bam.keras")
    assert set(attention_zoo.pyramid_outputs(loaded)) == {"P2", "P3", "P4", "P5"}
    maps = keras.Model(loaded.input, attention_zoo.attention_outputs(loaded))(IMAGES)
    assert set(maps) == {"bam1", "bam2", "bam3"}
    assert maps["bam1"]["gate"].shape == (2, 16, 16, 1)


def test_classifier_activation_turns_logits_into_probabilities():
    model = attention_zoo.get("resnet18", num_classes=5, classifier_activation="softmax")
    probabilities = keras.ops.convert_to_numpy(model(IMAGES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_weights_from_a_file_reproduce_the_saved_model(tmp_path):
    model = attention_zoo.get("se_resnet18", num_classes=3)
    path = tmp_path / "se_resnet18.weights.h5"
    model.save_weights(path)
    reloaded = attention_zoo.get("se_resnet18", num_classes=3, weights=path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(IMAGES)), keras.ops.convert_to_numpy(model(IMAGES)), rtol=1e-6, atol=1e-6
    )


def test_a_new_variant_is_a_few_lines_of_registered_data():
    @attention_zoo.register_model(family="resnet", paper=attention_zoo.papers.SENET, layout="test", name="tiny_se_resnet")
    def tiny(**options):
        return build_resnet(ResNetSpec(block="basic", layers=(1, 1, 1, 1), attention="se"), **options)

    try:
        assert "tiny_se_resnet" in attention_zoo.list_models("tiny_*")
        assert attention_zoo.get("tiny_se_resnet", num_classes=2)(IMAGES).shape == (2, 2)
        with pytest.raises(ValueError, match="already registered"):
            attention_zoo.register_model(family="resnet", paper=None, layout="", name="tiny_se_resnet")(tiny)
    finally:
        attention_zoo.registry._REGISTRY.pop("tiny_se_resnet")
