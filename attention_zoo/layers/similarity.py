"""Similarity (score) functions of the general attention mechanism.

Each layer takes `[queries, keys]`, queries of shape (batch, Nq, Dq) and keys of shape
(batch, Nk, Dk), and returns the scores (batch, Nq, Nk) that a softmax (or an argmax) turns
into attention weights:

    DotSimilarity          q . k                                   (Luong's "dot")
    ScaledDotSimilarity    q . k / sqrt(d)                         (Vaswani et al.)
    BilinearSimilarity     q W k^T, learned W (Dq x Dk)            (Luong's "general")
    CosineSimilarity       scale * cos(q, k), scale fixed or learned
    AdditiveSimilarity     v^T tanh(W_q q + W_k k)                 (Bahdanau's "concat")
    MLPSimilarity          MLP([q; k]) -> scalar

`get_similarity(name, **kwargs)` makes one by name, which is how the pooling layers take a
configurable, serialisable similarity.

MACs: `count_macs(input_shape)` takes the queries' shape (what
`attention_zoo.utils.count_macs` passes for a layer with several inputs) and reads the keys'
shape from the layer's build; a pair `[queries_shape, keys_shape]` may be passed instead.
Only the matrix products are counted, not elementwise work (norms, scaling, tanh).
"""

import math

import keras
from keras import ops

from attention_zoo.layers.base import register_layer


def stable_softmax(logits, axis=-1):
    """Softmax computed in float32 and cast back, so float16 logits neither overflow nor lose
    the small weights (the max is subtracted by `ops.softmax`)."""
    dtype = keras.backend.standardize_dtype(logits.dtype)
    weights = ops.softmax(ops.cast(logits, "float32"), axis=axis)
    return ops.cast(weights, dtype)


def _static_dim(value):
    return value if isinstance(value, int) else None


class Similarity(keras.layers.Layer):
    """Base of the similarity layers: validates `[queries, keys]` and counts MACs."""

    same_dims = False  # dot-product kinds need Dq == Dk

    def _split_shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} '{self.name}' takes [queries, keys]; got {input_shape}")
        query_shape, key_shape = (tuple(s) for s in input_shape)
        if len(query_shape) != 3 or len(key_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects queries (batch, Nq, Dq) and keys "
                f"(batch, Nk, Dk); got {query_shape} and {key_shape}"
            )
        if self.same_dims and None not in (query_shape[-1], key_shape[-1]) and query_shape[-1] != key_shape[-1]:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' needs queries and keys of the same width; "
                f"got {query_shape[-1]} and {key_shape[-1]}"
            )
        return query_shape, key_shape

    def build(self, input_shape):
        query_shape, key_shape = self._split_shapes(input_shape)
        self._key_shape = key_shape
        self.build_projections(query_shape, key_shape)

    def build_projections(self, query_shape, key_shape):
        pass

    def compute_output_shape(self, input_shape):
        query_shape, key_shape = self._split_shapes(input_shape)
        return (query_shape[0], query_shape[1], key_shape[1])

    def _count_shapes(self, input_shape):
        """(Nq, Dq, Nk, Dk) from the queries' shape (keys from the build) or from a pair."""
        if input_shape and isinstance(input_shape[0], (list, tuple)):
            query_shape, key_shape = (tuple(s) for s in input_shape)
        else:
            query_shape, key_shape = tuple(input_shape), getattr(self, "_key_shape", None)
            if key_shape is None:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' needs the keys' shape to count MACs: "
                    "build it first or pass [queries_shape, keys_shape]"
                )
        dims = (query_shape[-2], query_shape[-1], key_shape[-2], key_shape[-1])
        if any(d is None for d in dims):
            raise ValueError(f"count_macs needs static shapes; got {query_shape} and {key_shape}")
        return dims

    def count_macs(self, input_shape):
        """MACs per example; `input_shape` is the queries' shape or [queries_shape, keys_shape]."""
        nq, dq, nk, _ = self._count_shapes(input_shape)
        return nq * nk * dq

    def call(self, inputs):
        queries, keys = inputs
        return self.score(queries, keys)

    def score(self, queries, keys):
        raise NotImplementedError


def _dot(queries, keys):
    return ops.matmul(queries, ops.swapaxes(keys, -1, -2))


@register_layer
class DotSimilarity(Similarity):
    """Dot product q . k (Luong et al. 2015, "dot"); queries and keys of the same width."""

    same_dims = True

    def score(self, queries, keys):
        return _dot(queries, keys)


@register_layer
class ScaledDotSimilarity(Similarity):
    """Dot product divided by sqrt(d), d the queries' (= keys') width (Vaswani et al. 2017)."""

    same_dims = True

    def score(self, queries, keys):
        depth = _static_dim(queries.shape[-1])
        if depth is not None:
            return _dot(queries * (1.0 / math.sqrt(depth)), keys)
        depth = ops.cast(ops.shape(queries)[-1], queries.dtype)
        return _dot(queries * ops.rsqrt(depth), keys)


@register_layer
class BilinearSimilarity(Similarity):
    """q W k^T with a learned W of shape (Dq, Dk) (Luong et al. 2015, "general").

    Args:
        kernel_initializer: initializer of W.

    MACs: the queries' projection q W (Nq Dq Dk) plus the product with the keys (Nq Nk Dk).
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build_projections(self, query_shape, key_shape):
        if query_shape[-1] is None or key_shape[-1] is None:
            raise ValueError(f"BilinearSimilarity '{self.name}' needs static widths; got {query_shape}, {key_shape}")
        self.kernel = self.add_weight(
            shape=(query_shape[-1], key_shape[-1]), initializer=self.kernel_initializer, name="kernel"
        )

    def score(self, queries, keys):
        return _dot(ops.matmul(queries, self.kernel), keys)

    def count_macs(self, input_shape):
        nq, dq, nk, dk = self._count_shapes(input_shape)
        return nq * dq * dk + nq * nk * dk

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config


@register_layer
class CosineSimilarity(Similarity):
    """scale * cos(q, k): the dot product of the L2-normalised queries and keys.

    Args:
        scale: the multiplier (an inverse temperature); cos alone lies in [-1, 1], which a
            softmax turns into nearly uniform weights, so a scale of ~10 is usual.
        trainable_scale: learn the scale (a scalar weight initialised to `scale`).
        epsilon: guards the norms of zero vectors.

    The normalisation runs in float32, so float16 inputs cannot overflow the squared norms.
    """

    same_dims = True

    def __init__(self, scale=1.0, trainable_scale=False, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.trainable_scale = bool(trainable_scale)
        self.epsilon = float(epsilon)

    def build_projections(self, query_shape, key_shape):
        if self.trainable_scale:
            self.scale_weight = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.scale), name="scale"
            )

    def _normalize(self, x):
        x = ops.cast(x, "float32")
        squared = ops.sum(ops.square(x), axis=-1, keepdims=True)
        return x * ops.rsqrt(ops.maximum(squared, self.epsilon**2))

    def score(self, queries, keys):
        dtype = keras.backend.standardize_dtype(queries.dtype)
        cosine = _dot(self._normalize(queries), self._normalize(keys))
        scale = ops.cast(self.scale_weight, "float32") if self.trainable_scale else self.scale
        return ops.cast(cosine * scale, dtype)

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale, trainable_scale=self.trainable_scale, epsilon=self.epsilon)
        return config


@register_layer
class AdditiveSimilarity(Similarity):
    """v^T tanh(W_q q + W_k k + b) (Bahdanau et al. 2015; Luong's "concat").

    Args:
        units: width of the hidden layer (W_q, W_k have `units` outputs).
        use_bias: the bias b (on the queries' projection).

    The projections are Dense layers on the (batch, N, D) queries and keys; v is a 1x1
    convolution over the (batch, Nq, Nk, units) pairwise tensor.
    MACs: Nq Dq U + Nk Dk U + Nq Nk U.
    """

    def __init__(self, units=64, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.query_dense = keras.layers.Dense(
            self.units, use_bias=use_bias, name="query_dense", dtype=self.dtype_policy
        )
        self.key_dense = keras.layers.Dense(self.units, use_bias=False, name="key_dense", dtype=self.dtype_policy)
        self.score_conv = keras.layers.Conv2D(1, 1, use_bias=False, name="score_conv", dtype=self.dtype_policy)

    def build_projections(self, query_shape, key_shape):
        self.query_dense.build(query_shape)
        self.key_dense.build(key_shape)
        self.score_conv.build((query_shape[0], query_shape[1], key_shape[1], self.units))

    def score(self, queries, keys):
        hidden = ops.tanh(self.query_dense(queries)[:, :, None, :] + self.key_dense(keys)[:, None, :, :])
        return self.score_conv(hidden)[..., 0]

    def count_macs(self, input_shape):
        nq, dq, nk, dk = self._count_shapes(input_shape)
        return nq * dq * self.units + nk * dk * self.units + nq * nk * self.units

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, use_bias=self.use_bias)
        return config


@register_layer
class MLPSimilarity(Similarity):
    """A small MLP on the concatenation [q; k] down to one score per (query, key) pair.

    Args:
        hidden_units: widths of the hidden layers (at least one).
        activation: their activation.

    The first layer on [q; k] is computed as W_q q + W_k k + b (the same linear map with its
    kernel split in two), so the (Nq, Nk, Dq + Dk) concatenation is never materialised; the
    later layers are 1x1 convolutions over the (batch, Nq, Nk, units) pairwise tensor.
    MACs: (Nq Dq + Nk Dk) H1 + Nq Nk (H1 H2 + ... + H_last).
    """

    def __init__(self, hidden_units=(64,), activation="relu", **kwargs):
        super().__init__(**kwargs)
        if isinstance(hidden_units, int):
            hidden_units = (hidden_units,)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        if not self.hidden_units:
            raise ValueError("MLPSimilarity needs at least one hidden layer")
        self.activation = activation
        first = self.hidden_units[0]
        self.query_dense = keras.layers.Dense(first, name="query_dense", dtype=self.dtype_policy)
        self.key_dense = keras.layers.Dense(first, use_bias=False, name="key_dense", dtype=self.dtype_policy)
        self.first_activation = keras.layers.Activation(activation, name="first_activation", dtype=self.dtype_policy)
        self.hidden = [
            keras.layers.Conv2D(units, 1, activation=activation, name=f"hidden_{i + 1}", dtype=self.dtype_policy)
            for i, units in enumerate(self.hidden_units[1:])
        ]
        self.score_conv = keras.layers.Conv2D(1, 1, name="score_conv", dtype=self.dtype_policy)

    def build_projections(self, query_shape, key_shape):
        self.query_dense.build(query_shape)
        self.key_dense.build(key_shape)
        pair_shape = (query_shape[0], query_shape[1], key_shape[1])
        for layer, units in zip(self.hidden, self.hidden_units[:-1]):
            layer.build(pair_shape + (units,))
        self.score_conv.build(pair_shape + (self.hidden_units[-1],))

    def score(self, queries, keys):
        hidden = self.first_activation(self.query_dense(queries)[:, :, None, :] + self.key_dense(keys)[:, None, :, :])
        for layer in self.hidden:
            hidden = layer(hidden)
        return self.score_conv(hidden)[..., 0]

    def count_macs(self, input_shape):
        nq, dq, nk, dk = self._count_shapes(input_shape)
        widths = self.hidden_units + (1,)
        pairwise = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        return (nq * dq + nk * dk) * widths[0] + nq * nk * pairwise

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=list(self.hidden_units), activation=self.activation)
        return config


SIMILARITIES = {
    "dot": DotSimilarity,
    "scaled_dot": ScaledDotSimilarity,
    "general": BilinearSimilarity,
    "bilinear": BilinearSimilarity,
    "cosine": CosineSimilarity,
    "additive": AdditiveSimilarity,
    "concat": AdditiveSimilarity,
    "mlp": MLPSimilarity,
}


def get_similarity(name, /, **kwargs):
    """A new similarity layer by name ("dot", "scaled_dot", "general"/"bilinear", "cosine",
    "additive"/"concat", "mlp"); `kwargs` go to its constructor (a layer `name=` included)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in SIMILARITIES:
        raise ValueError(f"Unknown similarity {name!r}; valid names: {', '.join(sorted(SIMILARITIES))}")
    return SIMILARITIES[key](**kwargs)
