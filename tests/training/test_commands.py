"""`attention-zoo train` and `evaluate`, through a parser built with `add_commands`."""

import json

import pytest

from tests.training.common import build_parser, run_cli


@pytest.mark.parametrize("command, words", [("train", ["--set", "--output", "resume"]), ("evaluate", ["--recipe", "--split"])])
def test_help_explains_the_commands(command, words, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    assert all(word in text for word in words)


def test_train_options_parse():
    args = build_parser().parse_args(["train", "quickstart", "--set", "a.b=1", "--set", "c.d=2", "--output", "x"])
    assert args.recipe == "quickstart" and args.set == ["a.b=1", "c.d=2"] and args.output == "x"


def test_bad_overrides_exit_with_status_2_and_a_message(tmp_path):
    code, out = run_cli(["train", "quickstart", "--set", "training.batchsize=3", "--output", str(tmp_path)])
    assert code == 2 and "unknown key 'training.batchsize'" in out


def test_evaluate_a_run_directory_reproduces_the_run_s_final_evaluation(resumed_run):
    _, run_dir, _, _, reports = resumed_run
    code, out = run_cli(["evaluate", str(run_dir), "--json", "--verbose", "0"])
    assert code == 0
    result = json.loads(out)
    assert result["model"].endswith("best.keras")
    expected = reports[-1]["evaluation"]["test"]
    assert result["evaluation"]["test"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["evaluation"]["test"]["loss"] == pytest.approx(expected["loss"], rel=1e-4)


def test_evaluate_a_model_file_needs_a_recipe(resumed_run, tmp_path):
    _, run_dir, _, _, _ = resumed_run
    code, out = run_cli(["evaluate", str(run_dir / "best.keras")])
    assert code == 2 and "needs --recipe" in out
    code, out = run_cli(["evaluate", str(tmp_path / "nothing")])
    assert code == 2 and "neither a run directory nor a .keras model" in out
