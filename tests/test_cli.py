"""The attention-zoo command line."""

import json

from attention_zoo.cli import main


def test_list_filters_models_and_prints_json(capsys):
    assert main(["list", "cbam_*", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["cbam_resnet101", "cbam_resnet18", "cbam_resnet34", "cbam_resnet50"]


def test_info_builds_the_model_and_checks_its_reference_figures(capsys):
    assert main(["info", "resnet18", "--build", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["paper"]["title"] == "Deep Residual Learning for Image Recognition"
    assert report["measured"]["params"] == report["params"] == 11_689_512
    assert abs(report["measured"]["gmacs"] - 1.82) < 0.02


def test_info_lists_the_published_weights_a_recipe_or_get_can_name(capsys):
    from attention_zoo import pretrained

    assert main(["info", "se_resnet50", "--json"]) == 0
    weights = json.loads(capsys.readouterr().out)["weights"]
    assert set(weights) == set(pretrained.available_weights("se_resnet50"))
    assert [tag for tag, entry in weights.items() if entry["default"]] == [pretrained.default_tag("se_resnet50")]
    assert weights["a2_in1k"]["verified"] and weights["a2_in1k"]["num_classes"] == 1000
    assert main(["info", "se_resnet50"]) == 0
    out = capsys.readouterr().out
    assert "'a2_in1k', imagenet-1k, 1000 classes, sha256 published" in out
    assert "no published sha256: needs allow_unverified" in out


def test_an_unknown_model_is_a_message_not_a_traceback(capsys):
    assert main(["info", "resnet5O"]) == 2
    assert "Closest registered names: resnet50" in capsys.readouterr().err
