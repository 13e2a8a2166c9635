"""Recurrent Attention Model, RAM (Mnih, Heess, Graves, Kavukcuoglu, NIPS 2014).

The agent looks at an image through T glimpses. In state h_{t-1} it chooses a location
l_{t-1}, reads a retina glimpse there and updates its state (t = 1..T); h_T classifies:

    l_{t-1} ~ N(mean = Linear(h_{t-1}), std = location_std)   location policy, h_0 = 0
    b_{t-1} = Linear(stop_gradient(h_{t-1}))                   learned reward baseline
    h_g = ReLU(Linear(glimpse(x, l_{t-1})))                    128 units
    h_l = ReLU(Linear(l_{t-1}))                                128 units
    g_t = ReLU(Linear(h_g) + Linear(h_l))                      256 units
    h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))                  256 units
    logits = Linear(h_T)                                       action (classification) network

"Linear(x)" is W x + b as in the paper, so the two sums carry two biases each (a
redundancy of the paper's formulation, kept so that parameter counts follow it).

Training is the paper's hybrid loss: cross-entropy for the classifier (backpropagated
through the core and glimpse networks), REINFORCE for the location policy with reward
R = 1 when the final classification is correct, else 0, and a squared error fitting the
baseline b_t to R:

    loss = CE + reinforce_weight * mean_batch(-sum_t log pi(l_t | h_t) * sg(R - b_t))
              + baseline_weight * mean_batch(mean_t (b_t - R)^2)

Choices the paper leaves open, and what this implementation does:
- Location std: the paper says only "fixed variance". Default 0.22, the value of the two
  public reproductions that reach the paper's numbers (Element-Research's torch RAM,
  2 x locatorStd 0.11, and the TensorFlow RAM lineage's loc_std 0.22).
- Range of the mean: the paper's mean is Linear(h_t), unbounded ("linear" here).
  `location_activation="tanh"` (default, as kevinzakka's PyTorch RAM) squashes it into
  (-1, 1); "hard_tanh" clips it, identity inside (Element-Research's torch RAM,
  zhongwen/RAM). A clipped mean that leaves [-1, 1] gets no gradient at all, and on small
  problems the policy was seen to run into a corner and stay there, hence tanh. Sampled
  locations (and "linear" means at inference) are clipped to [-1, 1]; log pi is evaluated
  at the unclipped sample, so the clip acts as part of the environment and the
  score-function estimate stays exact for the Gaussian policy.
- First location: `initial_location="policy"` (default) makes l_0 an action like the
  others, taken in the zero state h_0 (so its mean is the location network's bias, a
  learned fixation point): sampled in training, its mean at inference. This is what
  Element-Research's reproduction does (its RecurrentAttention feeds the locator a zero
  state first). "center" fixes l_0 at the centre; "random" draws it uniformly in training
  and uses the centre at inference, a train / test mismatch that was seen to learn
  markedly worse on small problems, so it is not the default.
- REINFORCE gradients: the paper trains all parameters theta with the policy gradient,
  so by default log pi backpropagates into the core and glimpse networks too;
  `reinforce_trains_core=False` stops them at h_t (only the location network learns
  from REINFORCE), as the common reimplementations do. On the embedded 60x60 cluttered
  digits (recipes/ram_cluttered_digits.toml, 40 epochs x 20,000) the paper's way kept RAM
  at 0.19 test accuracy, below random glimpses (0.46); False reached 0.59, so the recipe
  uses it. The baseline always sees stop_gradient(h_t), so the baseline MSE
  trains only the baseline layer. Locations fed back into the glimpse network are
  actions: no gradient flows through them.
- Inference is deterministic: locations are the policy means.
- `random_glimpses=True` is the paper's "random glimpses" baseline: every location,
  the first included, uniform in [-1, 1]^2 in training and at inference; there is no
  location network and no baseline, and the loss is the cross-entropy alone.

Keras integration: `call(images)` returns the class logits (plus the (batch, T, 2)
locations with `return_locations=True`); `call(images, training=True)` returns the whole
rollout as a dict (logits, locations and, with a learned policy, the log-probabilities
and baselines of the sampled locations), because the REINFORCE terms need exactly the
samples of that forward pass. `compute_loss` adds them to the compiled classification
loss and `compute_metrics` gives compiled metrics the logits, so plain `compile` / `fit`
/ `evaluate` / `predict` work on every backend. Sampling uses a SeedGenerator, so it
works under JAX's jit. The T steps are unrolled in Python.
"""

import math

import keras
from keras import ops

from attention_zoo.layers.base import register_layer
from attention_zoo.layers.glimpse import GlimpseSensor, locations_to_pixels
from attention_zoo.models.common import InputGuard

LOCATION_ACTIVATIONS = ("tanh", "hard_tanh", "linear")
INITIAL_LOCATIONS = ("policy", "center", "random")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


@register_layer
class RecurrentAttentionModel(keras.Model):
    """The RAM classifier of Mnih et al. (2014), trainable with `compile` and `fit`.

    Args:
        num_classes: classes of the action network (at least 2: the reward is whether
            the arg-max class is right).
        input_channels: channels of the images (1 for MNIST).
        num_glimpses: T, glimpses per image.
        patch_size, num_scales, scale_factor, resampling: the glimpse sensor (see
            `attention_zoo.layers.GlimpseSensor`).
        glimpse_hidden_units, location_hidden_units, glimpse_units, core_units: widths of
            h_g, h_l, g_t and h_t (128, 128, 256, 256 in the paper).
        location_std: standard deviation of the Gaussian location policy, in the
            normalised coordinates where the image spans [-1, 1].
        location_activation: "tanh" (default), "hard_tanh" or "linear": how the policy
            mean Linear(h_t) is kept in [-1, 1] (see the module notes).
        initial_location: "policy" (default): l_0 is the policy's action in the zero
            state h_0, sampled in training, its mean at inference; "center": always the
            image centre; "random": uniform in training, the centre at inference.
        random_glimpses: the random-glimpses baseline (no location learning).
        reinforce_weight, baseline_weight: weights of the REINFORCE and baseline terms.
        reinforce_trains_core: let the policy gradient reach the core and glimpse networks.
        seed: seed of the location sampling.

    Locations are (x, y) with (0, 0) the image centre and (-1, -1) the top-left corner,
    as in the paper; `glimpse_locations(images, pixels=True)` converts them to pixels.
    """

    def __init__(
        self,
        num_classes=10,
        input_channels=1,
        num_glimpses=6,
        patch_size=8,
        num_scales=1,
        scale_factor=2,
        resampling="area",
        glimpse_hidden_units=128,
        location_hidden_units=128,
        glimpse_units=256,
        core_units=256,
        location_std=0.22,
        location_activation="tanh",
        initial_location="policy",
        random_glimpses=False,
        reinforce_weight=1.0,
        baseline_weight=1.0,
        reinforce_trains_core=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = _positive_int("num_classes", num_classes)
        if self.num_classes < 2:
            raise ValueError(
                f"num_classes must be at least 2: RAM's reward is whether its arg-max class is right; got {num_classes}"
            )
        self.input_channels = _positive_int("input_channels", input_channels)
        self.num_glimpses = _positive_int("num_glimpses", num_glimpses)
        self.glimpse_hidden_units = _positive_int("glimpse_hidden_units", glimpse_hidden_units)
        self.location_hidden_units = _positive_int("location_hidden_units", location_hidden_units)
        self.glimpse_units = _positive_int("glimpse_units", glimpse_units)
        self.core_units = _positive_int("core_units", core_units)
        if not location_std > 0:
            raise ValueError(f"location_std must be positive; got {location_std!r}")
        if location_activation not in LOCATION_ACTIVATIONS:
            raise ValueError(f"location_activation must be one of {LOCATION_ACTIVATIONS}; got {location_activation!r}")
        self.location_std = float(location_std)
        self._log_normaliser = math.log(self.location_std) + _LOG_SQRT_2PI
        self.location_activation = location_activation
        if initial_location not in INITIAL_LOCATIONS:
            raise ValueError(f"initial_location must be one of {INITIAL_LOCATIONS}; got {initial_location!r}")
        self.initial_location = initial_location
        self.random_glimpses = bool(random_glimpses)
        self.reinforce_weight = float(reinforce_weight)
        self.baseline_weight = float(baseline_weight)
        self.reinforce_trains_core = bool(reinforce_trains_core)
        self.seed = seed
        # A policy that never chooses a location (one glimpse at a fixed start) learns nothing.
        self.learns_locations = not self.random_glimpses and (self.num_glimpses > 1 or initial_location == "policy")

        dtype = self.dtype_policy
        self.input_guard = InputGuard(self.name, 1, self.input_channels, name="input_guard", dtype=dtype)
        self.sensor = GlimpseSensor(
            patch_size, num_scales, scale_factor, resampling, name="glimpse_sensor", dtype=dtype
        )
        self.glimpse_hidden = keras.layers.Dense(
            self.glimpse_hidden_units, activation="relu", name="glimpse_hidden", dtype=dtype
        )
        self.location_hidden = keras.layers.Dense(
            self.location_hidden_units, activation="relu", name="location_hidden", dtype=dtype
        )
        self.glimpse_what = keras.layers.Dense(self.glimpse_units, name="glimpse_what", dtype=dtype)
        self.glimpse_where = keras.layers.Dense(self.glimpse_units, name="glimpse_where", dtype=dtype)
        self.core_input = keras.layers.Dense(self.core_units, name="core_input", dtype=dtype)
        self.core_recurrent = keras.layers.Dense(self.core_units, name="core_recurrent", dtype=dtype)
        if self.learns_locations:
            self.location_mean = keras.layers.Dense(2, name="location_mean", dtype=dtype)
            self.baseline = keras.layers.Dense(1, name="baseline", dtype=dtype)
        else:
            self.location_mean = self.baseline = None
        self.classifier = keras.layers.Dense(self.num_classes, name="classifier", dtype=dtype)
        self.seed_generator = keras.random.SeedGenerator(seed, name="location_sampler")
        self.reward_tracker = keras.metrics.Mean(name="reward")

    @property
    def patch_size(self):
        return self.sensor.patch_size

    @property
    def num_scales(self):
        return self.sensor.num_scales

    @property
    def scale_factor(self):
        return self.sensor.scale_factor

    @property
    def resampling(self):
        return self.sensor.resampling

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.input_guard.build(input_shape)
        batch = input_shape[0]
        self.sensor.build([input_shape, (batch, 2)])
        glimpse_size = self.patch_size * self.patch_size * self.num_scales * self.input_channels
        self.glimpse_hidden.build((batch, glimpse_size))
        self.location_hidden.build((batch, 2))
        self.glimpse_what.build((batch, self.glimpse_hidden_units))
        self.glimpse_where.build((batch, self.location_hidden_units))
        self.core_input.build((batch, self.glimpse_units))
        self.core_recurrent.build((batch, self.core_units))
        if self.learns_locations:
            self.location_mean.build((batch, self.core_units))
            self.baseline.build((batch, self.core_units))
        self.classifier.build((batch, self.core_units))

    # The forward pass.

    def _uniform_locations(self, batch):
        return keras.random.uniform(
            (batch, 2), minval=-1.0, maxval=1.0, seed=self.seed_generator, dtype=self.compute_dtype
        )

    def _glimpse_features(self, images, locations):
        glimpse = self.sensor([images, locations])
        glimpse = ops.reshape(glimpse, (-1, self.patch_size * self.patch_size * self.num_scales * self.input_channels))
        what = self.glimpse_what(self.glimpse_hidden(glimpse))
        where = self.glimpse_where(self.location_hidden(locations))
        return ops.relu(what + where)

    def _policy_mean(self, state):
        mean = self.location_mean(state if self.reinforce_trains_core else ops.stop_gradient(state))
        if self.location_activation == "tanh":
            return ops.tanh(mean)
        if self.location_activation == "hard_tanh":
            return ops.clip(mean, -1.0, 1.0)
        return mean

    def _next_location(self, state, batch, stochastic):
        """(location, log pi, baseline) of the action taken in `state`; the last two are
        None unless a learned policy samples."""
        if self.random_glimpses:
            return self._uniform_locations(batch), None, None
        if not stochastic:
            return ops.stop_gradient(ops.clip(self._policy_mean(state), -1.0, 1.0)), None, None
        mean = ops.cast(self._policy_mean(state), "float32")
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator, dtype="float32")
        sample = ops.stop_gradient(mean + self.location_std * noise)
        log_prob = -0.5 * ops.square((sample - mean) / self.location_std) - self._log_normaliser
        baseline = ops.cast(self.baseline(ops.stop_gradient(state))[:, 0], "float32")
        return ops.cast(ops.clip(sample, -1.0, 1.0), self.compute_dtype), ops.sum(log_prob, axis=-1), baseline

    def rollout(self, images, training=False):
        """Runs the T glimpses; returns a dict of the logits (batch, classes), the glimpse
        locations l_0..l_{T-1} (batch, T, 2) and, when a learned policy samples (training),
        the log-probabilities and baselines of its sampled locations: (batch, T) with
        `initial_location="policy"`, (batch, T - 1) otherwise (l_0 is then not an action)."""
        images = self.input_guard(images)
        batch = ops.shape(images)[0]
        stochastic = bool(training) or self.random_glimpses
        state = ops.zeros((batch, self.core_units), dtype=self.compute_dtype)
        log_probs, baselines = [], []
        if self.random_glimpses or (stochastic and self.initial_location == "random"):
            location = self._uniform_locations(batch)
        elif self.initial_location == "policy":
            location, log_prob, baseline = self._next_location(state, batch, stochastic)
            if log_prob is not None:
                log_probs.append(log_prob)
                baselines.append(baseline)
        else:
            location = ops.zeros((batch, 2), dtype=self.compute_dtype)
        locations = [location]
        for step in range(self.num_glimpses):
            glimpse = self._glimpse_features(images, location)
            state = ops.relu(self.core_recurrent(state) + self.core_input(glimpse))
            if step == self.num_glimpses - 1:
                break
            location, log_prob, baseline = self._next_location(state, batch, stochastic)
            if log_prob is not None:
                log_probs.append(log_prob)
                baselines.append(baseline)
            locations.append(location)
        outputs = {"logits": self.classifier(state), "locations": ops.stack(locations, axis=1)}
        if log_probs:
            outputs["log_probs"] = ops.stack(log_probs, axis=1)
            outputs["baselines"] = ops.stack(baselines, axis=1)
        return outputs

    def call(self, images, training=None, return_locations=False):
        outputs = self.rollout(images, training=training)
        if training:
            return outputs
        if return_locations:
            return outputs["logits"], outputs["locations"]
        return outputs["logits"]

    def glimpse_locations(self, images, pixels=False):
        """The inference-time glimpse centres (batch, T, 2) as (x, y): normalised to
        [-1, 1], or with `pixels=True` in pixel coordinates (pixel i centred at i)."""
        locations = self.rollout(images, training=False)["locations"]
        if pixels:
            shape = ops.shape(images)
            return locations_to_pixels(locations, (shape[1], shape[2]))
        return locations

    # Training.

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """Keras' compile; the classification loss defaults to sparse categorical
        cross-entropy on the logits (pass `CategoricalCrossentropy(from_logits=True)` for
        one-hot labels). The REINFORCE and baseline terms are added in `compute_loss`."""
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        # Keras skips recompiling models that override `compile` unless this is overridden too;
        # the saved config holds the resolved loss, so replaying it is exact.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _labels(self, y):
        y = ops.convert_to_tensor(y)
        if len(y.shape) == 2 and y.shape[-1] == self.num_classes:
            return ops.argmax(y, axis=-1)
        return ops.reshape(ops.cast(y, "int32"), (-1,))

    def reward(self, y, logits):
        """R = 1 where the arg-max class is the label, else 0; sparse or one-hot labels."""
        predicted = ops.argmax(ops.stop_gradient(ops.convert_to_tensor(logits)), axis=-1)
        return ops.cast(ops.equal(ops.cast(predicted, "int32"), ops.cast(self._labels(y), "int32")), "float32")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        rollout = y_pred if isinstance(y_pred, dict) else {"logits": y_pred}
        rollout = {key: ops.convert_to_tensor(value) for key, value in rollout.items()}
        logits = rollout["logits"]
        loss = super().compute_loss(x, y, logits, sample_weight, training=training)
        if y is None:
            return loss
        reward = self.reward(y, logits)
        weights = None if sample_weight is None else ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        self.reward_tracker.update_state(reward, sample_weight=weights)
        if "log_probs" not in rollout:
            return loss

        def batch_mean(values):
            return ops.mean(values if weights is None else values * weights)

        baselines = rollout["baselines"]
        advantage = ops.stop_gradient(reward[:, None] - baselines)
        reinforce = batch_mean(-ops.sum(rollout["log_probs"] * advantage, axis=1))
        baseline_error = batch_mean(ops.mean(ops.square(baselines - reward[:, None]), axis=1))
        return ops.cast(loss, "float32") + self.reinforce_weight * reinforce + self.baseline_weight * baseline_error

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    # Introspection.

    def count_macs(self, input_shape):
        """Multiply-accumulates per image at `input_shape` (H, W, C): T glimpses of the
        sensor's two matrix products and the fully connected layers."""
        height, width, channels = input_shape
        glimpse_size = self.patch_size * self.patch_size * self.num_scales * channels
        per_step = (
            self.sensor.count_macs((1, height, width, channels))
            + glimpse_size * self.glimpse_hidden_units
            + 2 * self.location_hidden_units
            + (self.glimpse_hidden_units + self.location_hidden_units) * self.glimpse_units
            + (self.glimpse_units + self.core_units) * self.core_units
        )
        policy = self.num_glimpses * (2 + 1) * self.core_units if self.learns_locations else 0
        return self.num_glimpses * per_step + policy + self.core_units * self.num_classes

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            input_channels=self.input_channels,
            num_glimpses=self.num_glimpses,
            patch_size=self.patch_size,
            num_scales=self.num_scales,
            scale_factor=self.scale_factor,
            resampling=self.resampling,
            glimpse_hidden_units=self.glimpse_hidden_units,
            location_hidden_units=self.location_hidden_units,
            glimpse_units=self.glimpse_units,
            core_units=self.core_units,
            location_std=self.location_std,
            location_activation=self.location_activation,
            initial_location=self.initial_location,
            random_glimpses=self.random_glimpses,
            reinforce_weight=self.reinforce_weight,
            baseline_weight=self.baseline_weight,
            reinforce_trains_core=self.reinforce_trains_core,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
