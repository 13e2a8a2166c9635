"""Checkpoints in timm's key layout made from zoo models, so loading can be tested offline and
without torch. The mapping here is written out independently of the converters (Keras path ->
timm key), so a round trip checks the converter against a second statement of the layout; the
parity tests check both against timm itself."""

import hashlib
import re

import keras
import numpy as np

_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _conv(kernel):  # HWIO -> OIHW
    return kernel.transpose(3, 2, 0, 1)


def _conv1x1(kernel):  # Dense (in, out) -> 1x1 Conv2d (out, in, 1, 1)
    return kernel.T[:, :, None, None]


def _timm_key(path, array, eca_module):
    parts = path.split("/")
    layer, rest = parts[0], parts[1:]
    if layer == "fc":
        return ("fc.weight", array.T) if rest == ["kernel"] else ("fc.bias", array)
    if layer == "stem_conv1":
        return ("conv1.weight", _conv(array)) if rest[0] == "conv" else (f"bn1.{_BN[rest[1]]}", array)
    match = re.fullmatch(r"layer(\d)_(\d+)_(\w+)", layer)
    if match is None:
        raise ValueError(f"fakes: no timm key for '{path}'")
    block, part = f"layer{match[1]}.{match[2]}", match[3]
    if part.startswith("conv"):
        n = part[4:]
        return (f"{block}.conv{n}.weight", _conv(array)) if rest[0] == "conv" else (f"{block}.bn{n}.{_BN[rest[1]]}", array)
    if part == "downsample":
        if rest[0] == "conv":
            return f"{block}.downsample.0.weight", _conv(array)
        return f"{block}.downsample.1.{_BN[rest[1]]}", array
    if part == "se":
        fc = {"reduce": "fc1", "expand": "fc2"}[rest[0]]
        return (f"{block}.se.{fc}.weight", _conv1x1(array)) if rest[1] == "kernel" else (f"{block}.se.{fc}.bias", array)
    if part == "eca":
        return f"{block}.{eca_module}.conv.weight", array.transpose(2, 1, 0)
    if part == "cbam":
        if rest[0] == "channel":
            fc = {"reduce": "fc1", "expand": "fc2"}[rest[1]]
            return f"{block}.se.channel.{fc}.weight", _conv1x1(array)
        if rest[1] == "conv":
            return f"{block}.se.spatial.conv.conv.weight", _conv(array)
        return f"{block}.se.spatial.conv.bn.{_BN[rest[2]]}", array
    raise ValueError(f"fakes: no timm key for '{path}'")


def timm_state_dict(model, eca_module="se"):
    """{timm key: array} holding `model`'s weights (plain stem; basic/bottleneck blocks with SE,
    ECA or timm-layout CBAM, i.e. mlp_bias=False and pool_order="mean_max")."""
    state = {}
    for variable in model.weights:
        key, array = _timm_key(variable.path, keras.ops.convert_to_numpy(variable), eca_module)
        state[key] = np.ascontiguousarray(array, dtype=np.float32)
        if key.endswith(".running_var"):
            state[key[: -len("running_var")] + "num_batches_tracked"] = np.array(7, dtype=np.int64)
    return state


def save_safetensors(state_dict, path):
    from safetensors.numpy import save_file

    save_file(state_dict, str(path))
    return path


def sha256_of(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def randomize(model, seed=0):
    """Random weights everywhere, BatchNorm statistics included, so no tensor is a trivial 0 or 1."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, shape)
        elif variable.path.endswith(("moving_mean", "beta", "bias")):
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = max(1, int(np.prod(shape[:-1])))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        variable.assign(value.astype("float32"))
    return model


def weights_of(model):
    return {variable.path: keras.ops.convert_to_numpy(variable).copy() for variable in model.weights}
