"""`training.distribution` -> the multi-device engine of the running backend.

Keras 3.15 has no backend-neutral data parallelism: `keras.distribution.DataParallel` works on
JAX only, and the TensorFlow backend uses `tf.distribute` strategies. This module maps the
recipe's name onto what exists:

    none                   one device
    auto                   every local accelerator (or every logical CPU when there is none):
                           MirroredStrategy on TensorFlow, DataParallel on JAX; one device on
                           PyTorch, or where only one device exists
    mirrored               tf.distribute.MirroredStrategy (TensorFlow)
    multi_worker_mirrored  tf.distribute.MultiWorkerMirroredStrategy (TensorFlow; TF_CONFIG
                           names the workers; create it before TensorFlow runs anything)
    data_parallel          keras.distribution.DataParallel (JAX)

Simulated devices for testing: TensorFlow `tf.config.set_logical_device_configuration`, JAX
`XLA_FLAGS=--xla_force_host_platform_device_count=N`, both before the backend starts.
"""

import contextlib
import dataclasses

import keras

NAMES = ("none", "auto", "mirrored", "multi_worker_mirrored", "data_parallel")


class DistributionError(ValueError):
    pass


@dataclasses.dataclass
class Distribution:
    name: str  # the engine actually used
    replicas: int
    devices: tuple
    engine: object = None  # tf.distribute.Strategy or keras.distribution.DataParallel

    @property
    def drop_remainder(self):
        # JAX shards each batch evenly over the devices: a last, smaller batch cannot be split.
        return self.name == "data_parallel"

    @contextlib.contextmanager
    def scope(self):
        """Model building, compiling and fitting happen inside."""
        if self.name in ("mirrored", "multi_worker_mirrored"):
            with self.engine.scope():
                yield self
        elif self.name == "data_parallel":
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(self.engine)
            try:
                yield self
            finally:
                keras.distribution.set_distribution(previous)
        else:
            yield self

    def describe(self):
        return {"name": self.name, "replicas": self.replicas, "devices": list(self.devices)}


def _tf_local_devices():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]


def resolve(name):
    """The `Distribution` for `name` on the current backend; a clear error where the backend has
    no such engine."""
    if name not in NAMES:
        raise DistributionError(f"training.distribution must be one of {NAMES}; got {name!r}")
    backend = keras.backend.backend()
    if name == "none":
        return Distribution("none", 1, ())
    if backend == "tensorflow":
        import tensorflow as tf

        if name == "data_parallel":
            raise DistributionError(
                "distribution='data_parallel' is keras.distribution.DataParallel, which Keras 3.15 supports on "
                "JAX only; on TensorFlow use 'mirrored' (or 'auto')"
            )
        if name == "multi_worker_mirrored":
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            return Distribution(name, strategy.num_replicas_in_sync, tuple(strategy.extended.worker_devices), strategy)
        devices = _tf_local_devices()
        if name == "auto" and len(devices) < 2:
            return Distribution("none", 1, tuple(devices))
        strategy = tf.distribute.MirroredStrategy(devices)
        return Distribution("mirrored", strategy.num_replicas_in_sync, tuple(devices), strategy)
    if backend == "jax":
        if name in ("mirrored", "multi_worker_mirrored"):
            raise DistributionError(
                f"distribution={name!r} is a tf.distribute strategy (TensorFlow backend); on JAX use "
                "'data_parallel' (or 'auto')"
            )
        devices = keras.distribution.list_devices()
        if name == "auto" and len(devices) < 2:
            return Distribution("none", 1, tuple(devices))
        return Distribution("data_parallel", len(devices), tuple(devices), keras.distribution.DataParallel(devices=devices))
    if name == "auto":
        return Distribution("none", 1, ())
    raise DistributionError(
        f"distribution={name!r}: Keras 3.15 has no multi-device training for the {backend} backend; use the "
        "TensorFlow backend ('mirrored') or JAX ('data_parallel'), or distribution='none'"
    )
