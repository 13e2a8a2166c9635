"""Pretrained weights: a manifest of published checkpoints, verified downloads, converters from
timm and the official CBAM/BAM code, and the preprocessing each checkpoint expects.

    import attention_zoo
    from attention_zoo import pretrained

    model = attention_zoo.get("resnet50", weights="imagenet")       # verified download, cached
    model = attention_zoo.get("se_resnet50", weights="a2_in1k", num_classes=10)  # new 10-class head
    model = attention_zoo.get("sk_resnet18", weights="/path/skresnet18.safetensors")
    model = attention_zoo.get("cbam_resnet50", weights=pretrained.Weights("imagenet", allow_unverified=True))

    prep = pretrained.preprocessing("resnet50")        # or model.pretrained_weights.preprocessing
    logits = model(prep(images))                       # RGB images with values in [0, 255]

`available_weights(name)` lists a model's tags with license, reported accuracy and source.
Weights whose publisher states no checksum are only used with `allow_unverified=True` (or
`ATTENTION_ZOO_ALLOW_UNVERIFIED=1`). See weights/README.md.
"""

from attention_zoo.pretrained.cache import CACHE_ENV, cache_root
from attention_zoo.pretrained.converters import CONVERTERS, ConvertedWeights, convert, detect_layout
from attention_zoo.pretrained.checkpoints import read_state_dict
from attention_zoo.pretrained.errors import (
    ChecksumError,
    CorruptWeightsError,
    UnknownWeightsError,
    UnverifiedWeightsError,
    WeightsDownloadError,
    WeightsError,
    WeightsMismatchError,
)
from attention_zoo.pretrained.loading import ALLOW_UNVERIFIED_ENV, PretrainedWeights, Weights, load_weights
from attention_zoo.pretrained.manifest import (
    DEFAULT_ALIAS,
    WeightsEntry,
    available_weights,
    default_tag,
    preprocessing,
    register_weights,
    resolve,
    unregister_weights,
)
from attention_zoo.pretrained.transforms import Preprocessing, prepare_images

__all__ = [
    "ALLOW_UNVERIFIED_ENV",
    "CACHE_ENV",
    "CONVERTERS",
    "ChecksumError",
    "ConvertedWeights",
    "CorruptWeightsError",
    "DEFAULT_ALIAS",
    "PretrainedWeights",
    "Preprocessing",
    "UnknownWeightsError",
    "UnverifiedWeightsError",
    "Weights",
    "WeightsDownloadError",
    "WeightsEntry",
    "WeightsError",
    "WeightsMismatchError",
    "available_weights",
    "cache_root",
    "convert",
    "default_tag",
    "detect_layout",
    "load_weights",
    "prepare_images",
    "preprocessing",
    "read_state_dict",
    "register_weights",
    "resolve",
    "unregister_weights",
]
