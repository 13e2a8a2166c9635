"""Interleaved timing rounds, shared by the benchmark scripts.

The machines these benchmarks run on drift by tens of percent within minutes. Each round times
every candidate once, one after the other, so that a slow spell slows all of them alike; a
comparison then takes the median over rounds of the per-round ratio (or difference), which
cancels the drift, rather than a ratio of medians taken at different times.
"""

import argparse
import functools
import statistics
import time


def interleaved_seconds(calls, rounds, iterations=1, warmup=2):
    """{label: [seconds per call, one value per round]} for `calls`, a {label: callable}.

    Each callable runs with no arguments and must return only when its work is done. A
    tf.function call on the CPU does (TensorFlow executes synchronously by default), so the
    scripts do not copy outputs to NumPy to wait for them; a runtime that returns before
    computing needs its result converted inside the callable. Every callable
    first runs `warmup` times (tracing, then warm caches); each round then times `iterations`
    calls of each in turn, in the dict's order."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    seconds = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            started = time.perf_counter()
            for _ in range(iterations):
                call()
            seconds[label].append((time.perf_counter() - started) / iterations)
    return seconds


def compiled_forward(model, jit=False):
    """`model(images, training=False)` as a tf.function of its own (`jit`: compiled by XLA).

    A partial per model, not a closure: TensorFlow counts traces per Python code object, so one
    closure traced once for each of several models made it warn of retracing."""
    import tensorflow as tf

    return tf.function(functools.partial(model, training=False), jit_compile=jit, reduce_retracing=True)


def round_ratios(seconds, label, baseline):
    """`label`'s time over `baseline`'s, one ratio per round."""
    return [a / b for a, b in zip(seconds[label], seconds[baseline])]


def median_ratio(seconds, label, baseline):
    """The median over rounds of `label`'s time over `baseline`'s in the same round."""
    return statistics.median(round_ratios(seconds, label, baseline))


def ratio_quartiles(seconds, label, baseline):
    """(lower, upper) quartile of the per-round ratios. The middle half of the rounds lies
    between them: a target inside that range is met or missed by the machine's noise as much
    as by the code."""
    ratios = round_ratios(seconds, label, baseline)
    if len(ratios) < 2:
        return ratios[0], ratios[0]
    lower, _, upper = statistics.quantiles(ratios, n=4, method="inclusive")
    return lower, upper


def median_difference(seconds, label, baseline):
    """The median over rounds of `label`'s time minus `baseline`'s in the same round."""
    return statistics.median(a - b for a, b in zip(seconds[label], seconds[baseline]))


def medians(seconds):
    """{label: median seconds}."""
    return {label: statistics.median(values) for label, values in seconds.items()}


def positive_int(text):
    """An argparse type for counts (batch, rounds, iterations): an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value
