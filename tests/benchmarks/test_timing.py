"""The benchmarks' timing rounds interleave the candidates, so that drift of a busy machine
slows them alike, and compare them round by round."""

import argparse

import keras
import numpy as np
import pytest

from benchmarks import timing


@pytest.fixture
def clock(monkeypatch):
    """A clock that only the timed calls advance: each call adds its own cost."""
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    return now


def test_every_round_times_each_call_once_in_order_after_its_warmup(clock):
    log = []

    def call(label, cost):
        def run():
            log.append(label)
            clock[0] += cost

        return run

    seconds = timing.interleaved_seconds({"a": call("a", 1.0), "b": call("b", 3.0)}, rounds=2, iterations=2, warmup=1)

    assert log == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert seconds == {"a": [1.0, 1.0], "b": [3.0, 3.0]}


def test_a_slow_round_does_not_move_the_per_round_comparisons(clock):
    slowdown_by_round = [1.0, 3.0, 1.0]  # the machine is three times slower in round 2
    calls_made = [0]

    def call(cost):
        def run():
            clock[0] += cost * slowdown_by_round[calls_made[0] // 2]
            calls_made[0] += 1

        return run

    seconds = timing.interleaved_seconds({"model": call(1.2), "baseline": call(1.0)}, rounds=3, warmup=0)

    assert seconds["baseline"] == pytest.approx([1.0, 3.0, 1.0])
    assert timing.median_ratio(seconds, "model", "baseline") == pytest.approx(1.2)
    assert timing.median_difference(seconds, "model", "baseline") == pytest.approx(0.2)
    assert timing.medians(seconds) == pytest.approx({"model": 1.2, "baseline": 1.0})


def test_the_spread_of_the_per_round_ratios_is_their_middle_half():
    seconds = {"model": [1.0, 1.3, 1.1, 1.4, 1.2], "baseline": [1.0] * 5}
    assert timing.round_ratios(seconds, "model", "baseline") == pytest.approx([1.0, 1.3, 1.1, 1.4, 1.2])
    assert timing.median_ratio(seconds, "model", "baseline") == pytest.approx(1.2)
    assert timing.ratio_quartiles(seconds, "model", "baseline") == pytest.approx((1.1, 1.3))
    one_round = {"model": [1.5], "baseline": [1.0]}
    assert timing.ratio_quartiles(one_round, "model", "baseline") == pytest.approx((1.5, 1.5))


def test_each_model_gets_its_own_inference_graph_traced_once_without_a_retracing_warning(caplog):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmarks time TensorFlow graphs")
    import tensorflow as tf

    # Six models, as in resnet_latency.py: TensorFlow warns from the fifth trace of one function.
    models = [keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(units)])
              for units in range(1, 7)]
    images = tf.ones((2, 3))

    with caplog.at_level("WARNING", logger="tensorflow"):
        forwards = [timing.compiled_forward(model) for model in models]
        for forward in forwards:
            forward(images)
        outputs = [forward(images) for forward in forwards]

    for model, forward, output in zip(models, forwards, outputs):
        np.testing.assert_allclose(output, model(images, training=False), rtol=1e-6)
        assert forward.experimental_get_tracing_count() == 1
    assert "retracing" not in caplog.text


def test_counts_on_the_command_line_must_be_at_least_one(capsys):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=timing.positive_int, default=7)
    assert parser.parse_args(["--rounds", "3"]).rounds == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--rounds", "0"])
    assert "argument --rounds: must be at least 1; got 0" in capsys.readouterr().err
