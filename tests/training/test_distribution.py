"""Multi-device training on one machine: two simulated CPU devices per backend, each backend in
its own process (devices must be configured before the backend starts)."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

from attention_zoo.training.distribution import DistributionError, resolve
from tests.training.common import tiny

ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, sys
backend = os.environ["KERAS_BACKEND"]
if backend == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from attention_zoo.training import train
report = train(json.loads(sys.argv[1]), sys.argv[2])
print("REPORT " + json.dumps({key: report[key] for key in ("status", "environment", "epochs", "data")}))
"""


def test_one_epoch_on_two_simulated_devices_per_backend(tmp_path):
    raw = tiny(
        data={"validation_split": "", "test_split": "", "options": {"train": 16}},
        training={"distribution": "auto", "batch_size": 8, "tensorboard": False},
        phases=[{"name": "one", "epochs": 1, "learning_rate": 1e-3}],
    )
    engines = {"tensorflow": "mirrored", "jax": "data_parallel"}
    # Both backends at once: each process is mostly waiting on its own compiler.
    running = {}
    for backend in engines:
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                   XLA_FLAGS="--xla_force_host_platform_device_count=2", CUDA_VISIBLE_DEVICES="")
        command = [sys.executable, "-c", SCRIPT, json.dumps(raw), str(tmp_path / backend)]
        running[backend] = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
    for backend, engine in engines.items():
        stdout, stderr = running[backend].communicate(timeout=400)
        lines = [line for line in stdout.splitlines() if line.startswith("REPORT ")]
        assert running[backend].returncode == 0 and lines, f"{backend}: {stderr[-3000:]}"
        report = json.loads(lines[-1][len("REPORT "):])
        assert report["environment"]["backend"] == backend
        distribution = report["environment"]["distribution"]
        assert distribution["name"] == engine and distribution["replicas"] == 2 and len(distribution["devices"]) == 2
        assert report["status"] == "completed" and len(report["epochs"]) == 1
        assert report["data"]["steps_per_epoch"] == 2  # 16 examples, global batch 8 over 2 devices


def test_engines_of_another_backend_are_refused_with_the_alternative():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the in-process check runs on TensorFlow; other backends are covered by the subprocesses")
    with pytest.raises(DistributionError, match="JAX only.*'mirrored'"):
        resolve("data_parallel")
    assert resolve("none").replicas == 1
    with pytest.raises(DistributionError, match="must be one of"):
        resolve("horovod")
