"""Attention pooling: a (batch, H, W, C) feature map to one vector (batch, C) by attending
over its N = H * W positions with learned queries.

    SoftAttentionPooling   softmax over the positions, weighted sum (learned query/queries)
    HardAttentionPooling   one position: Gumbel-softmax (straight-through) in training,
                           argmax at inference
    LocalAttentionPooling  Luong et al. 2015 "local-p" in 2-D: a predicted centre and a
                           Gaussian window restrict the attention

The scores come from a similarity layer of `attention_zoo.layers.similarity`, chosen by
name (`similarity="scaled_dot"`, `similarity_kwargs={...}` for its constructor); the keys and
values are the feature vectors themselves.
"""

import keras
from keras import ops

from attention_zoo.layers.base import AttentionLayer, check_channels, register_layer
from attention_zoo.layers.similarity import get_similarity, stable_softmax
from attention_zoo.utils.counting import dense_macs


def flatten_positions(inputs):
    """(batch, H, W, C) -> ((batch, H * W, C), H, W); H and W stay Python ints when static."""
    _, height, width, channels = ops.shape(inputs)
    return ops.reshape(inputs, (-1, height * width, channels)), height, width


def _positions(input_shape):
    height, width = input_shape[1], input_shape[2]
    return None if height is None or width is None else height * width


class _QueryPooling(AttentionLayer):
    """Learned queries scored against the positions with a named similarity."""

    def __init__(self, channels, num_queries=1, similarity="scaled_dot", similarity_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.num_queries = int(num_queries)
        if self.num_queries < 1:
            raise ValueError(f"num_queries must be at least 1; got {num_queries}")
        self.similarity_name = similarity
        self.similarity_kwargs = dict(similarity_kwargs or {})
        options = dict(self.similarity_kwargs)
        options.setdefault("name", "similarity")
        options.setdefault("dtype", self.dtype_policy)
        self.similarity = get_similarity(similarity, **options)

    def build(self, input_shape):
        check_channels(self, input_shape, self.channels)
        self.query = self.add_weight(
            shape=(self.num_queries, self.channels),
            initializer=keras.initializers.RandomNormal(stddev=self.channels**-0.5),
            name="query",
        )
        self.similarity.build(self._similarity_shapes(input_shape))

    def _similarity_shapes(self, input_shape):
        batch = input_shape[0]
        return [(batch, self.num_queries, self.channels), (batch, _positions(input_shape), self.channels)]

    def scores(self, keys):
        """(batch, num_queries, N) scores of the learned queries against the keys (batch, N, C)."""
        queries = ops.broadcast_to(self.query[None], (ops.shape(keys)[0], self.num_queries, self.channels))
        return self.similarity([ops.cast(queries, keys.dtype), keys])

    def count_macs(self, input_shape):
        positions = _positions(input_shape)
        similarity = self.similarity.count_macs(self._similarity_shapes((1,) + tuple(input_shape[1:])))
        return similarity + self.num_queries * positions * self.channels

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            num_queries=self.num_queries,
            similarity=self.similarity_name,
            similarity_kwargs=dict(self.similarity_kwargs),
        )
        return config


@register_layer
class SoftAttentionPooling(_QueryPooling):
    """Soft attention pooling: softmax over the H * W positions of the similarity between
    learned queries and the features, then the weighted sum of the features.

    Args:
        channels: channels C of the input feature map.
        num_queries: learned queries. With 1 (default) the output is (batch, C) and the
            attention (batch, H, W); with Q > 1 each query pools on its own: output
            (batch, Q, C), attention (batch, Q, H, W).
        similarity: name of the score function (see `get_similarity`), "scaled_dot" default.
        similarity_kwargs: arguments of the similarity's constructor.

    MACs: the similarity's plus the weighted sum (Q N C).
    """

    def attend(self, inputs, training=None):
        keys, height, width = flatten_positions(inputs)
        weights = stable_softmax(self.scores(keys), axis=-1)
        pooled = ops.matmul(weights, keys)
        attention = ops.reshape(weights, (-1, self.num_queries, height, width))
        if self.num_queries == 1:
            return pooled[:, 0], attention[:, 0]
        return pooled, attention

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        if self.num_queries == 1:
            pooled, attention = (batch, self.channels), (batch, height, width)
        else:
            pooled = (batch, self.num_queries, self.channels)
            attention = (batch, self.num_queries, height, width)
        return (pooled, attention) if self.return_attention else pooled


@register_layer
class HardAttentionPooling(_QueryPooling):
    """Hard attention pooling: the feature vector of one position, picked by a learned query.

    At inference (training False/None) the position with the highest score is taken
    (deterministic): the output is exactly one of the input feature vectors and the
    attention a one-hot map. In training a position is sampled with the Gumbel-softmax of
    temperature `temperature`: with `straight_through=True` the forward pass uses the hard
    one-hot sample while the gradient flows through the soft sample (straight-through
    estimator); with False the soft sample itself weights the positions.

    Args:
        channels: channels C of the input feature map.
        temperature: Gumbel-softmax temperature (> 0).
        straight_through: hard forward pass with soft gradients in training.
        similarity, similarity_kwargs: the score function, as in `SoftAttentionPooling`.
        seed: seed of the layer's `keras.random.SeedGenerator` (the Gumbel noise).

    Output (batch, C); attention (batch, H, W), the weights used.
    MACs: the similarity's plus the weighted sum (N C).
    """

    def __init__(
        self,
        channels,
        temperature=1.0,
        straight_through=True,
        similarity="scaled_dot",
        similarity_kwargs=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(channels, num_queries=1, similarity=similarity, similarity_kwargs=similarity_kwargs, **kwargs)
        self.temperature = float(temperature)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        self.straight_through = bool(straight_through)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def selection_weights(self, logits, training=None):
        """Float32 weights over the positions from float32 logits (batch, N)."""
        if not training:
            return ops.one_hot(ops.argmax(logits, axis=-1), ops.shape(logits)[-1], dtype="float32")
        uniform = keras.random.uniform(
            ops.shape(logits), minval=1e-7, maxval=1.0 - 1e-7, dtype="float32", seed=self.seed_generator
        )
        gumbel = -ops.log(-ops.log(uniform))
        soft = ops.softmax((logits + gumbel) / self.temperature, axis=-1)
        if not self.straight_through:
            return soft
        hard = ops.one_hot(ops.argmax(soft, axis=-1), ops.shape(logits)[-1], dtype="float32")
        # Exactly `hard` in the forward pass (the bracket is zero); the gradient of `soft`.
        return hard + (soft - ops.stop_gradient(soft))

    def attend(self, inputs, training=None):
        keys, height, width = flatten_positions(inputs)
        logits = ops.cast(self.scores(keys)[:, 0], "float32")
        weights = ops.cast(self.selection_weights(logits, training=training), keys.dtype)
        pooled = ops.matmul(weights[:, None, :], keys)[:, 0]
        return pooled, ops.reshape(weights, (-1, height, width))

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], self.channels)
        return (pooled, tuple(input_shape[:3])) if self.return_attention else pooled

    def get_config(self):
        config = super().get_config()
        del config["num_queries"]
        config.update(temperature=self.temperature, straight_through=self.straight_through, seed=self.seed)
        return config


@register_layer
class LocalAttentionPooling(_QueryPooling):
    """Local attention pooling: Luong et al. 2015 "local-p" over the 2-D positions.

    A centre p = (row, col) is predicted from the mean feature m,
    p = (H - 1, W - 1) * sigmoid(v_p^T tanh(W_p m)), so it lies on the grid. The learned
    query's scores s(r, c) are combined with a Gaussian of sigma = window / 2 around p and
    restricted to the window |r - p_row| <= window, |c - p_col| <= window:

        a(r, c) = exp(s(r, c)) * exp(-((r - p_row)^2 + (c - p_col)^2) / (2 sigma^2))

    normalised over the positions in the window (zero outside). The paper multiplies the
    window-softmax by the Gaussian without renormalising; here the weights sum to one. With
    window >= 0.5 at least one position always lies in the window.

    Args:
        channels: channels C of the input feature map.
        window: radius D of the window in positions (>= 0.5); sigma = D / 2.
        center_units: width of W_p (default: channels).
        similarity, similarity_kwargs: the score function, as in `SoftAttentionPooling`.

    Output (batch, C); attention (batch, H, W), the final weights. The predicted centre is
    exposed by `predict_center(inputs)`: (batch, 2) (row, col) in pixel units.
    MACs: the centre predictor (C U + 2 U), the similarity's, the weighted sum (N C).
    """

    def __init__(
        self, channels, window=2.0, center_units=None, similarity="scaled_dot", similarity_kwargs=None, **kwargs
    ):
        super().__init__(channels, num_queries=1, similarity=similarity, similarity_kwargs=similarity_kwargs, **kwargs)
        self.window = float(window)
        if self.window < 0.5:
            raise ValueError(f"window must be at least 0.5 so that a position lies in it; got {window}")
        self.center_units = center_units
        self.center_width = int(center_units) if center_units is not None else self.channels
        self.center_hidden = keras.layers.Dense(
            self.center_width, activation="tanh", name="center_hidden", dtype=self.dtype_policy
        )
        self.center_out = keras.layers.Dense(
            2, activation="sigmoid", use_bias=False, name="center_out", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        super().build(input_shape)
        self.center_hidden.build((input_shape[0], self.channels))
        self.center_out.build((input_shape[0], self.center_width))

    def _center(self, keys, height, width):
        relative = ops.cast(self.center_out(self.center_hidden(ops.mean(keys, axis=1))), "float32")
        extent = ops.cast(ops.stack([height - 1, width - 1]), "float32")
        return relative * extent[None, :]

    def predict_center(self, inputs):
        """The window centres (batch, 2), (row, col) in pixel units, for feature maps `inputs`."""
        keys, height, width = flatten_positions(inputs)
        return self._center(keys, height, width)

    def attend(self, inputs, training=None):
        keys, height, width = flatten_positions(inputs)
        center = self._center(keys, height, width)
        index = ops.arange(height * width)
        rows = ops.cast(index // width, "float32")[None, :] - center[:, 0:1]
        cols = ops.cast(index % width, "float32")[None, :] - center[:, 1:2]
        sigma = self.window / 2.0
        log_window = -(ops.square(rows) + ops.square(cols)) / (2.0 * sigma * sigma)
        inside = ops.logical_and(ops.abs(rows) <= self.window, ops.abs(cols) <= self.window)
        logits = ops.cast(self.scores(keys)[:, 0], "float32") + log_window
        logits = ops.where(inside, logits, ops.full_like(logits, -1e9))
        weights = ops.cast(ops.softmax(logits, axis=-1), keys.dtype)
        pooled = ops.matmul(weights[:, None, :], keys)[:, 0]
        return pooled, ops.reshape(weights, (-1, height, width))

    def count_macs(self, input_shape):
        center = dense_macs((1, self.channels), self.center_width) + dense_macs((1, self.center_width), 2)
        return center + super().count_macs(input_shape)

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], self.channels)
        return (pooled, tuple(input_shape[:3])) if self.return_attention else pooled

    def get_config(self):
        config = super().get_config()
        del config["num_queries"]
        config.update(window=self.window, center_units=self.center_units)
        return config
