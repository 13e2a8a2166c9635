"""The ResNet family: one generic builder, variants registered as data in `presets`."""

from attention_zoo.models.resnet import presets
from attention_zoo.models.resnet.backbone import ResNetSpec, build_resnet, build_resnet_features

__all__ = ["ResNetSpec", "build_resnet", "build_resnet_features", "presets"]
