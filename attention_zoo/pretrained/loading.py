"""Loading weights into a built zoo model: from a manifest tag, a source checkpoint or a Keras file.

Loading is all or nothing: every tensor is converted and shape-checked against the model
before the first variable is assigned, so a failure leaves the model exactly as it was.
"""

import dataclasses
import logging
import os
import warnings

import keras

from attention_zoo.pretrained import cache, checkpoints, converters, download, manifest
from attention_zoo.pretrained.errors import (
    CorruptWeightsError,
    UnverifiedWeightsError,
    WeightsError,
    WeightsMismatchError,
)
from attention_zoo.pretrained.transforms import Preprocessing

logger = logging.getLogger("attention_zoo.pretrained")

ALLOW_UNVERIFIED_ENV = "ATTENTION_ZOO_ALLOW_UNVERIFIED"
_PATH_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".tar", ".ckpt", ".h5", ".hdf5", ".keras")


@dataclasses.dataclass(frozen=True)
class Weights:
    """What to load, with options `get(..., weights=...)` has no keyword for.

    source: a tag of `available_weights(name)`, "imagenet" (the model's default tag) or the
        path of a checkpoint (.safetensors or PyTorch file in a supported layout, a zoo
        `.weights.h5`, or a converted-weights file).
    allow_unverified: use a download whose publisher states no checksum (see the manifest's
        `sha256`); also `ATTENTION_ZOO_ALLOW_UNVERIFIED=1`.
    cache_dir: Keras cache directory to use instead of `$ATTENTION_ZOO_CACHE_DIR` /
        `$KERAS_HOME` / `~/.keras`.
    layout: the key layout of a source checkpoint file ("timm" or "official_cbam");
        detected from its keys when None.

        attention_zoo.get("cbam_resnet50", weights=Weights("imagenet", allow_unverified=True))
    """

    source: object = manifest.DEFAULT_ALIAS
    allow_unverified: bool = False
    cache_dir: str = None
    layout: str = None


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """What was loaded into a model; attached as `model.pretrained_weights`.

    source: the URL or path loaded. tag, entry: the manifest tag and entry (None for files).
    sha256: the source file's SHA-256; verified: it matched the publisher's checksum.
    preprocessing: how to prepare images for these weights (None for a local checkpoint of
        unknown provenance).
    head_loaded: False when the classifier kept its initialisation (other num_classes, or
        no head in the model). loaded: number of variables assigned.
    """

    model: str
    source: str
    tag: str = None
    entry: manifest.WeightsEntry = None
    sha256: str = None
    verified: bool = False
    preprocessing: Preprocessing = None
    head_loaded: bool = True
    loaded: int = 0


def _allow_unverified(spec):
    if spec.allow_unverified:
        return True
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in ("1", "true", "yes")


def _is_path(source, name):
    """Whether `source` names a file rather than a tag (a model's own tags win over file names)."""
    if isinstance(source, os.PathLike):
        return True
    if not isinstance(source, str):
        raise TypeError(
            "weights must be None, a tag string, a file path or attention_zoo.pretrained.Weights; "
            f"got {type(source).__name__}"
        )
    if source == manifest.DEFAULT_ALIAS or source in manifest.available_weights(name):
        return False
    return os.path.exists(source) or os.sep in source or "/" in source or source.lower().endswith(_PATH_SUFFIXES)


def manifest_entry(name, weights):
    """The `WeightsEntry` that `weights` (as `get` takes it) names for model `name`, or None
    for no weights or a file path. An unknown tag raises `UnknownWeightsError`."""
    if weights is None:
        return None
    source = weights.source if isinstance(weights, Weights) else weights
    if _is_path(source, name):
        return None
    return manifest.resolve(name, source)


def load_weights(model, weights, *, model_name=None, allow_unverified=False, cache_dir=None):
    """Loads `weights` into the built zoo `model`; returns and attaches `PretrainedWeights`.

    Args:
        model: a model from `attention_zoo.get` (any num_classes, include_top, input size).
        weights: a tag, "imagenet", a file path, or a `Weights`.
        model_name: the registered name whose manifest entries apply (default `model.name`).
        allow_unverified, cache_dir: as in `Weights` (a `Weights` passed in wins).

    A different `num_classes` than the checkpoint's loads the backbone and keeps the new
    classifier's initialisation (logged as a warning). Any other mismatch raises
    `WeightsMismatchError` naming the first weight that does not fit, and the model is left
    untouched.
    """
    spec = weights if isinstance(weights, Weights) else Weights(weights, allow_unverified, cache_dir)
    name = model_name or model.name
    source = spec.source
    if _is_path(source, name):
        info = _load_file(model, os.fspath(source), name, spec)
    else:
        info = _load_tag(model, source, name, spec)
    # Plain attribute: travels with this Python object, not with saved .keras files.
    model.pretrained_weights = info
    return info


def _load_file(model, path, name, spec):
    if not os.path.isfile(path):
        raise WeightsError(
            f"{name}: weights={path!r} is not a file. Pass None for random initialisation, an existing "
            f"checkpoint path, 'imagenet' or a tag ({', '.join(sorted(manifest.available_weights(name))) or 'none known'})."
        )
    if path.lower().endswith(".keras"):
        raise WeightsError(
            f"{name}: '{path}' is a whole saved model; load it with keras.saving.load_model, or save its "
            "weights with model.save_weights('....weights.h5') and pass that."
        )
    sniffed = checkpoints.sniff_format(path)
    if sniffed == "hdf5":
        if cache.is_converted_file(path):
            converted, metadata = cache.read_converted(path)
            loaded, head_loaded = assign(model, converted, f"'{path}'")
            return PretrainedWeights(name, path, metadata.get("tag"), loaded=loaded, head_loaded=head_loaded)
        loaded, _ = _load_keras_file(model, path, name)
        return PretrainedWeights(name, path, loaded=loaded)
    state_dict = checkpoints.read_state_dict(path)
    converted = converters.convert(state_dict, spec.layout)
    loaded, head_loaded = assign(model, converted, f"'{path}'")
    return PretrainedWeights(name, path, loaded=loaded, head_loaded=head_loaded)


def _load_keras_file(model, path, name, entry=None):
    """A zoo `.weights.h5` (from `model.save_weights`) of exactly this architecture and head.

    For a tag (`entry`) whose checkpoint has another class count than `model`, everything but
    the head loads and the head keeps its initialisation, as for converted checkpoints.
    Returns (number of variables loaded, whether the head was loaded)."""
    saved = [keras.ops.convert_to_numpy(variable) for variable in model.weights]
    try:
        model.load_weights(path)
        return len(saved), True
    except Exception as error:
        _restore(model, saved)
        classes = _class_count(model)
        if entry is not None and classes is not None and classes != entry.num_classes:
            return _load_keras_backbone(model, path, name, entry, saved, classes)
        raise WeightsMismatchError(
            f"{name}: the Keras weights file '{path}' does not fit this model ({error}). A .weights.h5 file "
            "loads only into the architecture (and head) it was saved from; the model was left unchanged."
        ) from error


def _restore(model, saved):
    for variable, value in zip(model.weights, saved):
        variable.assign(value)


def _class_count(model):
    """Classes of the model's head (the last axis of its output), or None without one."""
    count = getattr(model, "num_classes", None)
    if isinstance(count, int):
        return count
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    return shape[-1] if isinstance(shape, tuple) and isinstance(shape[-1], int) else None


def _load_keras_backbone(model, path, name, entry, saved, classes):
    """Loads a zoo `.weights.h5` of `entry.num_classes` classes into `model` of `classes`: every
    variable but the head's. Which variables Keras skipped is read exactly: they are filled
    with NaN first and still NaN after the load. Anything skipped that does not end in the
    model's class axis is not a head, so the model is restored and the mismatch raised."""
    floats = [v for v in model.weights if keras.backend.standardize_dtype(v.dtype).startswith(("float", "bfloat"))]
    for variable in floats:
        variable.assign(keras.ops.full(variable.shape, float("nan"), dtype=variable.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about the skipped head; the check below is exact
        model.load_weights(path, skip_mismatch=True)
    skipped = [v for v in floats if bool(keras.ops.all(keras.ops.isnan(v)))]
    not_head = [v for v in skipped if not v.shape or v.shape[-1] != classes]
    if not_head or not skipped:
        _restore(model, saved)
        first = not_head[0] if not_head else None
        why = (f"its weight '{first.path}' {tuple(first.shape)} did not load and is not part of a {classes}-class head"
               if first is not None else "nothing in it differs only by the head")
        raise WeightsMismatchError(
            f"{name}: the weights '{entry.name}' ({entry.num_classes} classes) do not fit this {classes}-class model: "
            f"{why}. The model was left unchanged."
        )
    by_path = dict(zip((v.path for v in model.weights), saved))
    for variable in skipped:
        variable.assign(by_path[variable.path])
    logger.warning(
        "%s: the weights '%s' have %d classes, the model %d: loaded everything but the head (%s), which keeps "
        "its initialisation", name, entry.name, entry.num_classes, classes, ", ".join(v.path for v in skipped)
    )
    return len(model.weights) - len(skipped), False


def _load_tag(model, tag, name, spec):
    entry = manifest.resolve(name, tag)
    check_requirements(model, entry)
    verified = entry.sha256 is not None
    if not verified and not _allow_unverified(spec):
        raise UnverifiedWeightsError(
            f"{entry.name}: its source ({entry.url}) publishes no SHA-256 checksum, so the download cannot be "
            "verified. To use it anyway pass weights=attention_zoo.pretrained.Weights("
            f"'{tag}', allow_unverified=True) or set {ALLOW_UNVERIFIED_ENV}=1; or download the file yourself, "
            "check it, and pass its path as weights=."
        )
    root = cache.cache_root(spec.cache_dir)
    converted, digest = _converted_from_cache(root, entry)
    if converted is None:
        if entry.file_format == "keras":
            path, digest = download.fetch(entry, root)
            loaded, head_loaded = _load_keras_file(model, path, name, entry)
            return _info(name, entry, digest, verified, loaded, head_loaded)
        converted, digest = _convert_source(root, entry)
    loaded, head_loaded = assign(model, converted, f"weights '{entry.name}'")
    if not verified:
        logger.warning(
            "%s: loaded without checksum verification (allowed); the file's SHA-256 is %s", entry.name, digest
        )
    return _info(name, entry, digest, verified, loaded, head_loaded)


def _info(name, entry, digest, verified, loaded, head_loaded):
    return PretrainedWeights(
        model=name,
        source=entry.url,
        tag=entry.tag,
        entry=entry,
        sha256=digest,
        verified=verified,
        preprocessing=entry.preprocessing,
        head_loaded=head_loaded,
        loaded=loaded,
    )


def _converted_from_cache(root, entry):
    path = cache.converted_path(root, entry)
    if not os.path.exists(path):
        return None, None
    try:
        converted, metadata = cache.read_converted(path)
    except CorruptWeightsError as error:
        logger.warning("%s: discarding a damaged converted cache file (%s); converting again", entry.name, error)
        cache.remove_quietly(path)
        return None, None
    current = (
        metadata.get("url") == entry.url
        and metadata.get("expected_sha256") == entry.sha256
        and metadata.get("converter_version") == converters.CONVERTER_VERSION
    )
    if not current:
        cache.remove_quietly(path)
        return None, None
    return converted, metadata.get("source_sha256")


def _convert_source(root, entry):
    path, digest = download.fetch(entry, root)
    try:
        state_dict = checkpoints.read_state_dict(path, entry.file_format)
    except CorruptWeightsError as error:
        cache.remove_quietly(path)
        raise CorruptWeightsError(
            f"{entry.name}: {error} The cached copy was deleted; retry to download it again."
        ) from error
    converted = converters.convert(state_dict, entry.converter)
    metadata = {
        "model": entry.model,
        "tag": entry.tag,
        "url": entry.url,
        "expected_sha256": entry.sha256,
        "source_sha256": digest,
    }
    cache.write_converted(cache.converted_path(root, entry), converted, metadata)
    return converted, digest


def check_requirements(model, entry):
    """Raises unless `model` was built the way `entry.requires` says its weights need."""
    for field, wanted in entry.requires.items():
        if field != "stem_pool":
            raise WeightsError(f"{entry.name}: unknown requirement '{field}' in the manifest")
        layer = _find_layer(model, "stem_pool_pad")
        padding = None if layer is None else tuple(tuple(side) for side in layer.padding)
        actual = {((1, 1), (1, 1)): "padded", ((0, 1), (0, 1)): "ceil"}.get(padding)
        if actual != wanted:
            raise WeightsMismatchError(
                f"{entry.name} needs the model built with {field}={wanted!r} (found {actual!r}): "
                f"attention_zoo.get('{entry.model}', weights='{entry.tag}', {field}={wanted!r}). "
                f"{entry.notes}".strip()
            )


def _find_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _pool_orders(model):
    """{kernel path: pool order} of every CBAM spatial gate in `model`."""
    from attention_zoo.layers.cbam import SpatialAttention

    return {
        layer.conv.kernel.path: layer.pool_order
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, SpatialAttention)
    }


def assign(model, converted, what):
    """Assigns `converted` (a `ConvertedWeights`) to `model`: all checked first, then all set.

    Returns (number of variables loaded, whether the classifier was loaded).
    """
    variables = {variable.path: variable for variable in model.weights}
    head_loaded = _head_fits(model, variables, converted, what)
    pool_orders = _pool_orders(model)
    plan, problems = [], []
    for path, variable in variables.items():
        if path in converted.head and not head_loaded:
            continue
        if path not in converted.tensors:
            problems.append(f"the model's weight '{path}' {tuple(variable.shape)} has no counterpart in the checkpoint")
            continue
        array = converted.tensors[path]
        source_order = converted.spatial_pool_orders.get(path)
        if source_order is not None and path in pool_orders and pool_orders[path] != source_order:
            # The two input channels of the spatial gate's kernel are the pooled maps: reorder them.
            array = array[:, :, ::-1, :]
        if tuple(array.shape) != tuple(variable.shape):
            problems.append(
                f"the model's weight '{path}' has shape {tuple(variable.shape)}, but checkpoint tensor "
                f"'{converted.sources.get(path, path)}' gives {tuple(array.shape)}"
            )
            continue
        plan.append((variable, array))
    surplus = [path for path in converted.tensors if path not in variables and path not in converted.head]
    problems += [
        f"checkpoint tensor '{converted.sources.get(path, path)}' (-> '{path}') has no counterpart in the model"
        for path in surplus
    ]
    if problems:
        more = f" ({len(problems) - 1} more problem(s) after this one)" if len(problems) > 1 else ""
        raise WeightsMismatchError(
            f"cannot load {what} into {model.name}: {problems[0]}{more}. The checkpoint is for a different "
            "architecture or options (check the model name and overrides such as attention_options); "
            "the model was left unchanged."
        )
    for variable, array in plan:
        variable.assign(keras.ops.cast(array, variable.dtype))
    return len(plan), head_loaded


def _head_fits(model, variables, converted, what):
    """Whether to load the classifier; logs when the model's head keeps its initialisation."""
    kernel = converted.tensors.get("fc/kernel")
    if kernel is None:
        if "fc/kernel" in variables:
            logger.warning("%s has no classifier: %s keeps its initialised head", what, model.name)
        return False
    if "fc/kernel" not in variables:
        logger.info("%s: %s has no classifier (include_top=False), loaded the backbone only", what, model.name)
        return False
    model_kernel = variables["fc/kernel"]
    if tuple(model_kernel.shape) == tuple(kernel.shape):
        return True
    if model_kernel.shape[0] != kernel.shape[0]:
        raise WeightsMismatchError(
            f"cannot load {what} into {model.name}: the classifier takes {model_kernel.shape[0]} features, the "
            f"checkpoint's {kernel.shape[0]}; the checkpoint is for a different architecture. The model was left unchanged."
        )
    logger.warning(
        "%s: the checkpoint's classifier has %d classes, %s has %d: loaded the backbone, the new head keeps "
        "its initialisation (train it before use)",
        what,
        kernel.shape[1],
        model.name,
        model_kernel.shape[1],
    )
    return False


__all__ = ["ALLOW_UNVERIFIED_ENV", "PretrainedWeights", "Weights", "assign", "check_requirements", "load_weights"]
