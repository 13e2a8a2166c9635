"""The shipped manifest: valid, honest about checksums, and covering the published checkpoints."""

import json
import re

import pytest

import attention_zoo
from attention_zoo import pretrained
from attention_zoo.pretrained import manifest

SHIPPED = manifest.load_manifest()

# zoo model -> the source checkpoint its default tag must be (timm's default tag, or the official release)
REQUIRED_DEFAULTS = {
    "resnet18": "timm resnet18.a1_in1k",
    "resnet34": "timm resnet34.a1_in1k",
    "resnet50": "timm resnet50.a1_in1k",
    "resnet101": "timm resnet101.a1h_in1k",
    "resnet152": "timm resnet152.a1h_in1k",
    "resnext50_32x4d": "timm resnext50_32x4d.a1h_in1k",
    "se_resnet50": "timm seresnet50.a1_in1k",
    "se_resnext50_32x4d": "timm seresnext50_32x4d.racm_in1k",
    "se_resnext101_32x4d": "timm seresnext101_32x4d.gluon_in1k",
    "senet154": "timm senet154.gluon_in1k",
    "legacy_se_resnet50": "timm legacy_seresnet50.in1k",
    "legacy_se_resnet101": "timm legacy_seresnet101.in1k",
    "legacy_se_resnet152": "timm legacy_seresnet152.in1k",
    "legacy_se_resnext50_32x4d": "timm legacy_seresnext50_32x4d.in1k",
    "sk_resnet18": "timm skresnet18.ra_in1k",
    "sk_resnet34": "timm skresnet34.ra_in1k",
    "sknet50": "timm skresnext50_32x4d.ra_in1k",
    "cbam_resnet50": "Jongchan/attention-module README: ResNet50+CBAM, 100 epochs",
    "bam_resnet50": "Jongchan/attention-module README: ResNet50+BAM, 90 epochs",
}


def all_entries():
    return [entry for weights in SHIPPED.values() for entry in weights.weights.values()]


def test_manifest_is_readable_json_with_a_format_version():
    with open(manifest.MANIFEST_PATH, encoding="utf-8") as handle:
        raw = json.load(handle)
    assert raw["format_version"] == 1
    assert set(raw["models"]) == set(SHIPPED)


def test_every_manifest_model_is_a_registered_zoo_model():
    registered = set(attention_zoo.list_models())
    assert set(SHIPPED) <= registered


@pytest.mark.parametrize("name, source", sorted(REQUIRED_DEFAULTS.items()))
def test_imagenet_resolves_to_the_expected_published_checkpoint(name, source):
    entry = pretrained.resolve(name, "imagenet")
    assert entry.source == source
    assert entry.tag == pretrained.default_tag(name)
    assert entry.num_classes == 1000 and entry.license


def test_timm_safetensors_come_from_the_timm_hugging_face_repositories():
    for entry in all_entries():
        if entry.file_format == "safetensors":
            repository = entry.source.removeprefix("timm ")
            assert entry.url == f"https://huggingface.co/timm/{repository}/resolve/main/model.safetensors"
            assert entry.page == f"https://huggingface.co/timm/{repository}"


def test_checksums_are_stated_by_their_source_or_absent():
    known = [entry for entry in all_entries() if entry.sha256 is not None]
    assert len(known) >= 8, "the Hugging Face checksums read off the file pages are recorded"
    for entry in known:
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.sha256_source and entry.page.removeprefix("https://") in entry.sha256_source
    assert len({entry.sha256 for entry in known}) == len(known)
    for entry in all_entries():
        if entry.sha256 is None:
            assert entry.sha256_source is None
            if entry.file_format == "pytorch" and entry.converter == "timm":
                # torch.hub file names end in the first 8 hex digits of the SHA-256
                assert entry.url.endswith(f"-{entry.sha256_prefix}.pth")


def test_reported_accuracy_and_imagenet_preprocessing_are_recorded_for_every_published_checkpoint():
    # The project's own small weights (weights/, tested in test_shipped_weights.py) are not ImageNet models.
    for entry in all_entries():
        if entry.url.startswith("project://"):
            continue
        assert entry.reported and entry.reported_source
        assert 60 < entry.top1 < 90, entry.name
        prep = entry.preprocessing
        assert prep.input_size == (224, 224)
        assert 0.8 <= prep.crop_pct <= 1.0
        assert prep.interpolation in ("bilinear", "bicubic")
        assert prep.mean == pytest.approx((0.485, 0.456, 0.406)) and prep.std == pytest.approx((0.229, 0.224, 0.225))


def test_reported_results_match_the_papers_anchor_for_the_official_checkpoints():
    cbam = pretrained.resolve("cbam_resnet50").reported[0]
    bam = pretrained.resolve("bam_resnet50").reported[0]
    assert (cbam["top1"], cbam["top5"]) == (77.622, 93.948)
    assert (bam["top1"], bam["top5"]) == (76.860, 93.416)


def test_licenses_follow_the_sources():
    assert pretrained.resolve("resnet50", "tv_in1k").license == "bsd-3-clause"
    assert pretrained.resolve("resnet50", "a1_in1k").license == "apache-2.0"
    assert pretrained.resolve("cbam_resnet50").license.startswith("MIT")


def test_models_without_a_matching_checkpoint_say_why():
    eca = SHIPPED["eca_resnet50"]
    assert eca.default is None and not eca.weights
    assert "ecaresnet50d" in eca.notes and "average-pool" in eca.notes
    with pytest.raises(pretrained.UnknownWeightsError, match="no published weights.*ecaresnet50d"):
        pretrained.resolve("eca_resnet50")


def test_an_unknown_tag_lists_the_available_ones():
    expected = r"unknown weights tag 'a9_in1k'.*'imagenet' \(= 'a1_in1k'\).*'tv_in1k'"
    with pytest.raises(pretrained.UnknownWeightsError, match=expected):
        pretrained.resolve("resnet50", "a9_in1k")


def test_legacy_senet154_weights_require_the_ceil_mode_stem():
    entry = pretrained.resolve("senet154", "legacy_in1k")
    assert entry.requires == {"stem_pool": "ceil"}
    assert pretrained.resolve("senet154").requires == {}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sha256", "ABC", "64 lowercase hex"),
        ("url", "ftp://example.com/x", "url must start"),
        ("file_format", "onnx", "file_format must be"),
        ("license", "", "license is required"),
        ("input_shape", [224, 224], r"input_shape must be \(height, width, channels\)"),
        ("model_options", ["base_filters"], "model_options must be a mapping"),
    ],
)
def test_a_malformed_manifest_is_rejected_with_the_entry_named(tmp_path, field, value, message):
    with open(manifest.MANIFEST_PATH, encoding="utf-8") as handle:
        raw = json.load(handle)
    raw["models"]["resnet50"]["weights"]["tv_in1k"][field] = value
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=f"resnet50.tv_in1k.*{message}"):
        manifest.load_manifest(path)


def test_preprocessing_is_available_by_model_and_tag():
    prep = pretrained.preprocessing("resnet50")
    assert (prep.crop_pct, prep.interpolation, prep.test_input_size) == (0.95, "bicubic", (288, 288))
    tv = pretrained.preprocessing("resnet50", "tv_in1k")
    assert (tv.crop_pct, tv.interpolation, tv.test_input_size) == (0.875, "bilinear", None)
