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


def test_an_unknown_model_is_a_message_not_a_traceback(capsys):
    assert main(["info", "resnet5O"]) == 2
    assert "Closest registered names: resnet50" in capsys.readouterr().err
