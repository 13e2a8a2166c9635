"""DCN's gradient-based attention: the one place where the zoo needs backend-specific autodiff.

The saliency of a coarse grid position is the L2 norm, over channels, of the gradient of the
entropy of the coarse prediction (the top layers applied to the coarse feature map) with
respect to the coarse feature vector there. Keras has no backend-agnostic
"gradient of a function" op, so `entropy_gradient` dispatches on `keras.backend.backend()` to
one small function per backend; everything around it is `keras.ops`.

The saliency only chooses where the fine layers look (through integer top-k indices), so it
must not carry gradients of the training loss: every function differentiates a detached copy
of the features and returns a detached gradient.
"""

import functools

import keras
from keras import ops


def prediction_entropy(logits):
    """Entropy of softmax(logits) per example, computed from log-probabilities for stability."""
    log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    return -ops.sum(ops.exp(log_probabilities) * log_probabilities, axis=-1)


def _total_entropy(logits):
    # Each example's entropy depends on its own features only (the top layers act per
    # example: no batch statistics), so the gradient of the batch sum is the per-example one.
    return ops.sum(prediction_entropy(logits))


def _tensorflow_gradient(top, features):
    import tensorflow as tf

    features = tf.stop_gradient(features)
    with tf.GradientTape() as tape:
        tape.watch(features)
        total = _total_entropy(top(features, training=False))
    return tf.stop_gradient(tape.gradient(total, features))


def _jax_gradient(top, features):
    import jax

    # Current values, also inside a trainer's stateless scope, where they are traced arrays.
    trainable = [variable.value for variable in top.trainable_variables]
    non_trainable = [variable.value for variable in top.non_trainable_variables]
    gradient = _jax_compiled_gradient()(top, trainable, non_trainable, jax.lax.stop_gradient(features))
    return jax.lax.stop_gradient(gradient)


@functools.cache
def _jax_compiled_gradient():
    import jax

    # A pure function of the top layers' weights and the features. Compiled as one program,
    # so that eager calls do not compile every primitive of the backward pass on its own
    # (inside a jitted train step it simply inlines). `top` is static: one program per model,
    # kept, like the model's top layers it refers to, in JAX's compilation cache.
    @functools.partial(jax.jit, static_argnums=0)
    def gradient(top, trainable, non_trainable, features):
        def total_entropy(feature_map):
            logits, _ = top.stateless_call(trainable, non_trainable, feature_map, training=False)
            return _total_entropy(logits)

        return jax.grad(total_entropy)(features)

    return gradient


def _torch_gradient(top, features):
    import torch

    features = features.detach().requires_grad_(True)
    # predict() runs under no_grad; the saliency needs a graph even there.
    with torch.enable_grad():
        total = _total_entropy(top(features, training=False))
        (gradient,) = torch.autograd.grad(total, features)
    return gradient.detach()


_GRADIENTS = {"tensorflow": _tensorflow_gradient, "jax": _jax_gradient, "torch": _torch_gradient}


def entropy_gradient(top, features):
    """d entropy(top(features)) / d features, shaped like `features`, without gradient history."""
    backend = keras.backend.backend()
    if backend not in _GRADIENTS:
        raise NotImplementedError(
            f"Dynamic Capacity Networks need automatic differentiation inside the forward pass; "
            f"supported backends are {sorted(_GRADIENTS)}, not '{backend}'."
        )
    return _GRADIENTS[backend](top, features)


def saliency_map(top, features):
    """(batch, Hc, Wc) saliency: L2 norm over channels of the entropy gradient."""
    gradient = ops.cast(entropy_gradient(top, features), "float32")
    return ops.sqrt(ops.sum(ops.square(gradient), axis=-1))
