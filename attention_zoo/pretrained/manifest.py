"""The manifest of published checkpoints (manifest.json, shipped with the package).

Each zoo model maps tags to a `WeightsEntry`: where the file is, its checksum (only where the
publisher states one; never guessed), format, converter, license, reported accuracy and the
preprocessing it was evaluated with. "imagenet" names a model's default tag.

Entries for weights the manifest does not ship (a project's own training runs, a mirror) can
be added at run time with `register_weights`.
"""

import dataclasses
import json
import os
import re
import threading

from attention_zoo.pretrained.errors import UnknownWeightsError
from attention_zoo.pretrained.transforms import Preprocessing

MANIFEST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest.json")
DEFAULT_ALIAS = "imagenet"
FILE_FORMATS = ("safetensors", "pytorch", "keras")
CONVERTERS = ("timm", "official_cbam", None)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_URL_SCHEMES = ("https://", "http://", "file://", "project://")


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One published checkpoint for one zoo model.

    url: where to download it. sha256: the file's SHA-256 as its publisher states it, or None
    (then loading needs `allow_unverified`). sha256_prefix: the leading hex digits that
    torch.hub-style file names carry (`name-<sha256[:8]>.pth`), checked when present but not
    counted as verification. file_format: "safetensors", "pytorch" (a torch.save pickle) or
    "keras" (a zoo `.weights.h5`). converter: the source key layout ("timm" or
    "official_cbam"; None for Keras files). requires: `ResNetSpec` fields the model must be
    built with (e.g. {"stem_pool": "ceil"}). num_classes, input_shape, model_options: the
    classes, (H, W, C) and `get` keyword options (e.g. {"base_filters": 16}) the checkpoint's
    model was built with; `get(name, weights=tag)` builds with them wherever the caller gives
    none, so a tag alone gives the model its weights were trained as.
    """

    model: str
    tag: str
    url: str
    file_format: str
    converter: str
    license: str
    source: str = ""
    page: str = ""
    sha256: str = None
    sha256_source: str = None
    sha256_prefix: str = None
    num_classes: int = 1000
    dataset: str = ""
    reported: tuple = ()
    reported_source: str = ""
    preprocessing: Preprocessing = dataclasses.field(default_factory=Preprocessing)
    requires: dict = dataclasses.field(default_factory=dict)
    input_shape: tuple = None
    model_options: dict = dataclasses.field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        where = f"weights '{self.model}.{self.tag}'"
        if not _TAG.match(self.tag) or self.tag == DEFAULT_ALIAS:
            raise ValueError(f"{where}: tag must be letters, digits, '_', '.', '-' and not '{DEFAULT_ALIAS}'")
        if not self.url.startswith(_URL_SCHEMES):
            raise ValueError(f"{where}: url must start with one of {_URL_SCHEMES}; got {self.url!r}")
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"{where}: file_format must be one of {FILE_FORMATS}; got {self.file_format!r}")
        if self.converter not in CONVERTERS:
            raise ValueError(f"{where}: converter must be one of {CONVERTERS}; got {self.converter!r}")
        if (self.converter is None) != (self.file_format == "keras"):
            raise ValueError(f"{where}: Keras files need converter None, source checkpoints a converter")
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            raise ValueError(f"{where}: sha256 must be 64 lowercase hex digits or null; got {self.sha256!r}")
        if self.sha256_prefix is not None and not re.match(r"^[0-9a-f]{6,63}$", self.sha256_prefix):
            raise ValueError(f"{where}: sha256_prefix must be 6 to 63 lowercase hex digits; got {self.sha256_prefix!r}")
        if self.sha256 and self.sha256_prefix and not self.sha256.startswith(self.sha256_prefix):
            raise ValueError(f"{where}: sha256 and sha256_prefix disagree")
        if not (isinstance(self.num_classes, int) and self.num_classes > 0):
            raise ValueError(f"{where}: num_classes must be a positive integer; got {self.num_classes!r}")
        if self.input_shape is not None and not (
            len(self.input_shape) == 3 and all(isinstance(side, int) and side > 0 for side in self.input_shape)
        ):
            raise ValueError(
                f"{where}: input_shape must be (height, width, channels) or null; got {self.input_shape!r}"
            )
        if not isinstance(self.model_options, dict):
            raise ValueError(f"{where}: model_options must be a mapping of get() keywords; got {self.model_options!r}")
        if not self.license:
            raise ValueError(f"{where}: license is required (write 'unknown' if the source states none)")
        if not isinstance(self.preprocessing, Preprocessing):
            raise ValueError(f"{where}: preprocessing must be a Preprocessing")
        for result in self.reported:
            if not {"top1", "input_size"} <= set(result):
                raise ValueError(f"{where}: each reported result needs at least top1 and input_size; got {result!r}")

    @property
    def name(self):
        return f"{self.model}.{self.tag}"

    @property
    def verifiable(self):
        return self.sha256 is not None

    @property
    def file_extension(self):
        return {"safetensors": ".safetensors", "pytorch": ".pth", "keras": ".weights.h5"}[self.file_format]

    @property
    def top1(self):
        """Reported top-1 accuracy at `preprocessing.input_size`, or None."""
        for result in self.reported:
            if result["input_size"] == self.preprocessing.input_size[0]:
                return result["top1"]
        return None

    @classmethod
    def from_dict(cls, model, tag, config):
        config = dict(config)
        unknown = set(config) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"weights '{model}.{tag}': unknown manifest fields {sorted(unknown)}")
        config["preprocessing"] = Preprocessing.from_dict(config.get("preprocessing", {}))
        config["reported"] = tuple(dict(result) for result in config.get("reported", ()))
        if config.get("input_shape") is not None:
            config["input_shape"] = tuple(config["input_shape"])
        return cls(model=model, tag=tag, **config)


@dataclasses.dataclass(frozen=True)
class ModelWeights:
    """The tags of one model, its default tag (None if it has none) and why, if it has none."""

    model: str
    default: str
    weights: dict
    notes: str = ""


_LOCK = threading.Lock()
_MANIFEST = None
_REGISTERED = {}
_REGISTERED_DEFAULTS = {}


def load_manifest(path=MANIFEST_PATH):
    """Parses and validates a manifest file: {model name: ModelWeights}."""
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    if raw.get("format_version") != 1:
        raise ValueError(f"{path}: unsupported manifest format_version {raw.get('format_version')!r}")
    models = {}
    for model, config in raw["models"].items():
        unknown = set(config) - {"default", "weights", "notes"}
        if unknown:
            raise ValueError(f"{path}: model '{model}' has unknown fields {sorted(unknown)}")
        weights = {tag: WeightsEntry.from_dict(model, tag, entry) for tag, entry in config.get("weights", {}).items()}
        default = config.get("default")
        if default is not None and default not in weights:
            raise ValueError(f"{path}: model '{model}' has default tag '{default}' but no such weights")
        if default is None and weights:
            raise ValueError(f"{path}: model '{model}' has weights but no default tag")
        models[model] = ModelWeights(model, default, weights, config.get("notes", ""))
    return models


def _manifest():
    global _MANIFEST
    with _LOCK:
        if _MANIFEST is None:
            _MANIFEST = load_manifest()
        return _MANIFEST


def model_weights(name):
    """The `ModelWeights` of `name`: shipped tags plus those added with `register_weights`."""
    shipped = _manifest().get(name)
    extra = _REGISTERED.get(name, {})
    if shipped is None and not extra:
        return ModelWeights(name, None, {})
    weights = {**(shipped.weights if shipped else {}), **extra}
    default = _REGISTERED_DEFAULTS.get(name) or (shipped.default if shipped else None)
    return ModelWeights(name, default, weights, shipped.notes if shipped else "")


def available_weights(name):
    """{tag: WeightsEntry} of the checkpoints that load into model `name`."""
    return dict(model_weights(name).weights)


def default_tag(name):
    """The tag that weights="imagenet" loads for `name`, or None."""
    return model_weights(name).default


def resolve(name, tag=DEFAULT_ALIAS):
    """The `WeightsEntry` for `name` and `tag` ("imagenet" = the default tag)."""
    entry_set = model_weights(name)
    if not entry_set.weights:
        why = f" {entry_set.notes}" if entry_set.notes else ""
        raise UnknownWeightsError(
            f"{name}: no published weights are known for this model.{why} Pass weights=None for random "
            "initialisation, the path of a checkpoint you have, or add an entry with "
            "attention_zoo.pretrained.register_weights()."
        )
    resolved = entry_set.default if tag == DEFAULT_ALIAS else tag
    if resolved not in entry_set.weights:
        tags = ", ".join(f"'{t}'" for t in sorted(entry_set.weights))
        alias = f"'{DEFAULT_ALIAS}' (= '{entry_set.default}'), " if entry_set.default else ""
        problem = f"unknown weights tag '{tag}'" if resolved else f"no default weights for '{DEFAULT_ALIAS}'"
        raise UnknownWeightsError(
            f"{name}: {problem}. Available: {alias}{tags}. A file path must point to an existing file."
        )
    return entry_set.weights[resolved]


def register_weights(model, tag, *, url, file_format, license, converter=None, default=False, **fields):
    """Adds (or replaces) weights for `model` under `tag` for this process; returns the entry.

    For a zoo `.weights.h5` file (e.g. trained by this project, see weights/README.md) use
    file_format="keras"; for a timm or official-code checkpoint give its `converter`.
    `default=True` makes weights="imagenet" load it. Other fields as in `WeightsEntry`
    (sha256, preprocessing as a dict or `Preprocessing`, reported, num_classes, input_shape,
    model_options, ...).
    """
    from attention_zoo.registry import model_info

    model_info(model)  # fails clearly for an unknown model name
    if isinstance(fields.get("preprocessing"), dict):
        fields["preprocessing"] = Preprocessing.from_dict(fields["preprocessing"])
    if "reported" in fields:
        fields["reported"] = tuple(fields["reported"])
    if fields.get("input_shape") is not None:
        fields["input_shape"] = tuple(fields["input_shape"])
    entry = WeightsEntry(
        model=model, tag=tag, url=url, file_format=file_format, converter=converter, license=license, **fields
    )
    with _LOCK:
        _REGISTERED.setdefault(model, {})[tag] = entry
        if default:
            _REGISTERED_DEFAULTS[model] = tag
    return entry


def unregister_weights(model, tag):
    """Removes weights added with `register_weights` (shipped entries stay)."""
    with _LOCK:
        tags = _REGISTERED.get(model, {})
        if tag not in tags:
            raise UnknownWeightsError(f"{model}: no registered weights '{tag}' to remove")
        del tags[tag]
        if _REGISTERED_DEFAULTS.get(model) == tag:
            del _REGISTERED_DEFAULTS[model]


def preprocessing(name, tag=DEFAULT_ALIAS):
    """The `Preprocessing` that the weights `name`/`tag` expect."""
    return resolve(name, tag).preprocessing


__all__ = [
    "DEFAULT_ALIAS",
    "MANIFEST_PATH",
    "ModelWeights",
    "WeightsEntry",
    "available_weights",
    "default_tag",
    "load_manifest",
    "model_weights",
    "preprocessing",
    "register_weights",
    "resolve",
    "unregister_weights",
]
