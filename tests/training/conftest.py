"""The resumed run that several test modules inspect, trained once per session."""

import json

import keras
import pytest

from attention_zoo.training.trainer import RunCheckpoint
from tests.training.common import run_cli, tiny, write_toml


def interrupt_at(monkeypatch, epoch):
    """A kill at the start of `epoch` (0-based): the run stops before that epoch's first step."""
    original = RunCheckpoint.on_epoch_begin

    def on_epoch_begin(self, current, logs=None):
        if current == epoch:
            raise KeyboardInterrupt
        original(self, current, logs)

    monkeypatch.setattr(RunCheckpoint, "on_epoch_begin", on_epoch_begin)


@pytest.fixture(scope="session")
def resumed_run(tmp_path_factory):
    """The same `train` command three times: killed at the phase boundary (epoch 2), killed in the
    middle of phase 2 (epoch 3), then run to the end. Yields (exit codes, run dir, argv, snapshots)."""
    root = tmp_path_factory.mktemp("resume")
    recipe = write_toml(tiny(), root / "tiny.toml")
    run_dir = root / "run"
    argv = ["train", str(recipe), "--output", str(run_dir), "--set", "training.batch_size=16", "--verbose", "0"]
    codes, states, reports = [], [], []
    with pytest.MonkeyPatch.context() as patch:
        for kill in (1, 2, None):
            patch.undo()
            if kill is not None:
                interrupt_at(patch, kill)
            keras.utils.clear_session()
            codes.append(run_cli(argv)[0])
            states.append(json.loads((run_dir / "checkpoint" / "state.json").read_text()))
            reports.append(json.loads((run_dir / "report.json").read_text()))
    return codes, run_dir, argv, states, reports
