"""Per-epoch TensorBoard scalars written with TensorFlow's core summary ops.

Keras' TensorBoard callback needs the `tensorboard` package for `tf.summary.scalar`; these
event files (tag "epoch_<metric>", training metrics under train/, validation metrics under
validation/, as Keras lays them out) need only TensorFlow and open in any TensorBoard.
"""

import math

import keras


class EpochScalars(keras.callbacks.Callback):
    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self._writers = {}

    def _writer(self, name):
        import tensorflow as tf

        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(f"{self.log_dir}/{name}")
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = "scalars"
        values = dict(logs or {})
        if getattr(self.model, "optimizer", None) is not None:
            from attention_zoo.training.trainer import last_learning_rate

            values["learning_rate"] = last_learning_rate(self.model.optimizer)
        for key, value in values.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with tf.device("/cpu:0"), self._writer(split).as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(value, tf.float32), step=epoch, metadata=metadata)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
