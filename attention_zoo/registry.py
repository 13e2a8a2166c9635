"""The model factory: `get`, `list_models`, `model_info` and the `register_model` decorator.

A family module registers each variant as a tiny builder function plus its `ModelInfo`
(paper, reference parameter count, MACs, reported accuracy); `get` validates what the user
asked for, then calls the builder.
"""

import dataclasses
import difflib
import fnmatch

_REGISTRY = {}
_POOLINGS = (None, "avg", "max")
DEFAULT_NUM_CLASSES = 1000  # ImageNet's, which the published checkpoints of most models have


@dataclasses.dataclass(frozen=True)
class Paper:
    title: str
    authors: str
    venue: str
    year: int
    url: str
    bibtex: str


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about a registered model without building it.

    params: reference parameter count in PyTorch's convention (weights plus BatchNorm
        gamma/beta), which the built model reproduces exactly; None where no reference exists.
    gmacs: reference multiply-accumulates at `default_input_size`, in billions, for the
        layout this model follows (`layout`).
    reported: published results, e.g. {"imagenet_top1_error": 22.37, "source": "..."}.
    """

    name: str
    family: str
    paper: Paper
    layout: str
    params: int = None
    gmacs: float = None
    reported: dict = dataclasses.field(default_factory=dict)
    default_input_size: int = 224
    min_input_size: int = 32
    input_channels: int = 3
    notes: str = ""

    @property
    def citation(self):
        return self.paper.bibtex


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered; the message lists the closest names."""


def register_model(info_fields=None, **fields):
    """Registers `builder(**options) -> keras.Model` under its function name.

    Usage: `@register_model(family="resnet", paper=SENET, layout="timm", params=28_088_024)`.
    """
    fields = {**(info_fields or {}), **fields}

    def decorator(builder):
        name = fields.pop("name", builder.__name__)
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is already registered")
        _REGISTRY[name] = (builder, ModelInfo(name=name, **fields))
        return builder

    return decorator


def list_models(pattern="*"):
    """Registered model names matching a shell-style wildcard, e.g. `list_models("*se_res*")`."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def _lookup(name):
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
    hint = f" Closest registered names: {', '.join(close)}." if close else ""
    raise UnknownModelError(f"Unknown model '{name}'.{hint} See attention_zoo.list_models().")


def model_info(name):
    """The `ModelInfo` of a registered model."""
    return _lookup(name)[1]


def _check_input_shape(info, input_shape):
    if input_shape is None:
        return (None, None, info.input_channels)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"{info.name}: input_shape must be (height, width, channels) for one image; got {input_shape}"
        )
    height, width, channels = input_shape
    if channels is None or channels < 1:
        raise ValueError(f"{info.name}: input_shape needs a positive channel count; got {input_shape}")
    for size in (height, width):
        if size is not None and size < info.min_input_size:
            raise ValueError(
                f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size} "
                f"pixels (model_info('{info.name}').min_input_size); got input_shape {input_shape}"
            )
    return input_shape


def get(
    name,
    *,
    weights=None,
    num_classes=None,
    include_top=True,
    input_shape=None,
    pooling=None,
    features_only=False,
    **overrides,
):
    """Builds a registered model.

    Args:
        name: a name from `list_models()`, e.g. "cbam_resnet50".
        weights: None (random initialisation); "imagenet" (the model's default published
            checkpoint) or another tag of `attention_zoo.pretrained.available_weights(name)`,
            downloaded once with its checksum verified, converted and cached; the path of a
            checkpoint (timm / torchvision / official CBAM-BAM `.safetensors` or PyTorch
            file, or a zoo `.weights.h5`); or `attention_zoo.pretrained.Weights(...)` for
            options such as `allow_unverified=True`. With a different `num_classes` than the
            checkpoint's the backbone loads and the new head keeps its initialisation; any
            other mismatch raises and leaves nothing half-loaded. The loaded model carries
            `model.pretrained_weights` (source, checksum, `preprocessing` for its inputs).
        num_classes: size of the classifier when `include_top`; default 1000, or the
            class count of the checkpoint that `weights` names by tag.
        include_top: keep the classification head.
        input_shape: (H, W, C); default (None, None, 3), any size of at least the model's
            minimum (`model_info(name).min_input_size`), or the shape the tagged checkpoint
            was trained at where its model needs one (the digit models' fixed canvases).
        pooling: without the top, None for the final feature map, "avg" or "max" for a vector.
        features_only: return a model whose output is the dict of multi-scale features
            {"P2": stride 4, ..., "P5": stride 32} (for segmentation and detection heads).
        **overrides: family options, e.g. `attention="cbam"` or `drop_rate=0.2` for ResNets;
            a tagged checkpoint adds the options its model was built with (the manifest's
            `model_options`) where these do not set them.
    """
    builder, info = _lookup(name)
    num_classes, input_shape, overrides = _checkpoint_defaults(name, weights, num_classes, input_shape, overrides)
    input_shape = _check_input_shape(info, input_shape)
    if pooling not in _POOLINGS:
        raise ValueError(f"{name}: pooling must be one of {_POOLINGS}; got {pooling!r}")
    if include_top and not (isinstance(num_classes, int) and num_classes > 0):
        raise ValueError(f"{name}: num_classes must be a positive integer; got {num_classes!r}")
    model = builder(
        num_classes=num_classes,
        include_top=include_top and not features_only,
        input_shape=input_shape,
        pooling=pooling,
        name=name,
        **overrides,
    )
    if weights is not None:
        _load_weights(model, weights, info)
    if features_only:
        from attention_zoo.models.common import feature_model

        model = feature_model(model)
    return model


def _checkpoint_defaults(name, weights, num_classes, input_shape, overrides):
    """`get`'s num_classes, input_shape and options, with what the caller left out taken from
    the manifest entry that `weights` names (a tag alone builds the model it was trained as)."""
    from attention_zoo.pretrained.loading import manifest_entry

    entry = manifest_entry(name, weights)
    if entry is None:
        return (DEFAULT_NUM_CLASSES if num_classes is None else num_classes), input_shape, overrides
    return (
        entry.num_classes if num_classes is None else num_classes,
        entry.input_shape if input_shape is None else input_shape,
        {**entry.model_options, **overrides},
    )


def square_input_shape(name, input_size=None, weights=None):
    """(H, W, C) to build `name` at for a square `input_size`; without one, the shape the
    checkpoint that `weights` names was trained at, or else the model's default size."""
    from attention_zoo.pretrained.loading import manifest_entry

    info = model_info(name)
    entry = manifest_entry(name, weights)
    trained = entry.input_shape if entry is not None else None
    if input_size is None and trained is not None:
        return trained
    side = input_size or info.default_input_size
    return (side, side, trained[-1] if trained else info.input_channels)


def _load_weights(model, weights, info):
    """Loads `weights` (tag, "imagenet", path or `pretrained.Weights`) into the built `model`."""
    from attention_zoo.pretrained import load_weights

    load_weights(model, weights, model_name=info.name)
