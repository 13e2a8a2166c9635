"""Model families. Importing this package registers every family's variants."""

from attention_zoo.models import resnet
from attention_zoo.models.common import attention_outputs, feature_model, pyramid_outputs

__all__ = ["attention_outputs", "feature_model", "pyramid_outputs", "resnet"]
