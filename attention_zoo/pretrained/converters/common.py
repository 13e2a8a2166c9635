"""Key-by-key conversion of PyTorch state dicts into Keras weight paths.

A converter is a list of `Rule`s: a regular expression over the source key, the Keras weight
path it fills (`model.weights[i].path`, e.g. "layer1_0_conv1/conv/kernel") and the layout
change. Keys are matched by name, never by position (safetensors hands keys back sorted), and
every source tensor must be claimed by a rule: a leftover means the checkpoint holds
something the zoo's model does not, and is an error rather than silently dropped.
"""

import dataclasses
import re

import numpy as np

from attention_zoo.pretrained.errors import WeightsMismatchError

# Bumped whenever a mapping changes, so converted weights cached by an older version are redone.
CONVERTER_VERSION = 1

BN_PARAMS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
BN = r"(?P<param>weight|bias|running_mean|running_var)"
# BatchNorm's step counter only matters to PyTorch's momentum=None mode; Keras has no equivalent.
IGNORED = re.compile(r".*\.num_batches_tracked")
HEAD_PATHS = frozenset({"fc/kernel", "fc/bias"})


def _need_rank(array, rank, key, what):
    if array.ndim != rank:
        raise WeightsMismatchError(
            f"checkpoint tensor '{key}' has shape {array.shape}, but a {what} needs {rank} dimensions"
        )


def conv_kernel(array, key):
    """Conv2d weight (out, in/groups, kh, kw) -> Keras (kh, kw, in/groups, out); groups map as is."""
    _need_rank(array, 4, key, "convolution weight")
    return array.transpose(2, 3, 1, 0)


def dense_kernel(array, key):
    """Linear (out, in) or 1x1 Conv2d (out, in, 1, 1) weight -> Dense kernel (in, out)."""
    if array.ndim == 4:
        if array.shape[2:] != (1, 1):
            raise WeightsMismatchError(f"checkpoint tensor '{key}' of shape {array.shape} is not a 1x1 convolution")
        array = array[:, :, 0, 0]
    _need_rank(array, 2, key, "fully connected weight")
    return array.T


def conv1d_kernel(array, key):
    """Conv1d weight (out, in, k) -> keras.ops.conv 1-D kernel (k, in, out) (ECA's channel conv)."""
    _need_rank(array, 3, key, "1-D convolution weight")
    return array.transpose(2, 1, 0)


def vector(array, key):
    _need_rank(array, 1, key, "bias or normalisation parameter")
    return array


@dataclasses.dataclass(frozen=True)
class Rule:
    """`pattern` matches a whole source key; `target(match)` is the Keras weight path."""

    pattern: re.Pattern
    target: object
    transform: object
    pool_order: str = None  # for CBAM spatial kernels: the order of their two input maps

    @classmethod
    def make(cls, pattern, target, transform, pool_order=None):
        if isinstance(target, str):
            template = target
            target = lambda match: template.format(**match.groupdict())  # noqa: E731
        return cls(re.compile(pattern), target, transform, pool_order)


def bn_rule(pattern_prefix, target_prefix):
    """The four BatchNorm tensors under `pattern_prefix` -> `target_prefix`/{gamma, beta, ...}."""
    return Rule.make(
        rf"{pattern_prefix}\.{BN}",
        lambda match: target_prefix.format(**match.groupdict()) + "/" + BN_PARAMS[match["param"]],
        vector,
    )


def weight_bias_rule(pattern_prefix, target_prefix, kernel_transform):
    """`.weight` -> `target_prefix/kernel` (with `kernel_transform`), `.bias` -> `target_prefix/bias`."""

    def transform(array, key):
        return kernel_transform(array, key) if key.endswith(".weight") else vector(array, key)

    return Rule.make(
        rf"{pattern_prefix}\.(?P<kind>weight|bias)",
        lambda match: target_prefix.format(**match.groupdict())
        + ("/kernel" if match["kind"] == "weight" else "/bias"),
        transform,
    )


@dataclasses.dataclass
class ConvertedWeights:
    """A checkpoint in Keras layout: {weight path: array}, independent of any built model.

    sources: weight path -> the source key it came from (for error messages).
    head: the classifier's weight paths (left out when the model's head differs).
    spatial_pool_orders: CBAM spatial-gate kernel path -> the order ("max_mean" or
        "mean_max") of the two pooled maps its input channels were trained on; loading swaps
        the kernel's input channels when the model pools in the other order.
    layout: the converter that produced it.
    """

    tensors: dict
    sources: dict
    head: frozenset = HEAD_PATHS
    spatial_pool_orders: dict = dataclasses.field(default_factory=dict)
    layout: str = ""


def convert_by_rules(state_dict, rules, layout):
    """Applies `rules` to every tensor of `state_dict` ({key: array}); see the module docstring."""
    tensors, sources, pool_orders, leftovers = {}, {}, {}, []
    for key in sorted(state_dict):
        if IGNORED.fullmatch(key):
            continue
        for rule in rules:
            match = rule.pattern.fullmatch(key)
            if match is None:
                continue
            path = rule.target(match)
            if path in tensors:
                raise WeightsMismatchError(
                    f"{layout} checkpoint: '{key}' and '{sources[path]}' both map to the weight '{path}'"
                )
            array = np.asarray(state_dict[key])
            if not np.issubdtype(array.dtype, np.floating):
                raise WeightsMismatchError(f"{layout} checkpoint: tensor '{key}' has dtype {array.dtype}, not float")
            tensors[path] = np.ascontiguousarray(rule.transform(array, key), dtype=np.float32)
            sources[path] = key
            if rule.pool_order:
                pool_orders[path] = rule.pool_order
            break
        else:
            leftovers.append(key)
    if leftovers:
        shown = ", ".join(f"'{key}'" for key in leftovers[:5])
        more = f" and {len(leftovers) - 5} more" if len(leftovers) > 5 else ""
        raise WeightsMismatchError(
            f"{layout} checkpoint: {len(leftovers)} tensor(s) have no place in attention_zoo's ResNet layout: "
            f"{shown}{more}. The checkpoint is of another architecture or layout (e.g. a deep-stem 'd'/'t' "
            "variant or average-pool shortcuts), which these weights cannot be loaded into."
        )
    if not tensors:
        raise WeightsMismatchError(f"{layout} checkpoint: the file holds no tensors")
    return ConvertedWeights(tensors, sources, HEAD_PATHS, pool_orders, layout)


__all__ = [
    "BN",
    "BN_PARAMS",
    "CONVERTER_VERSION",
    "ConvertedWeights",
    "HEAD_PATHS",
    "Rule",
    "bn_rule",
    "conv1d_kernel",
    "conv_kernel",
    "convert_by_rules",
    "dense_kernel",
    "vector",
    "weight_bias_rule",
]
