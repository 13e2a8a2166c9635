"""attention_zoo: vision attention architectures for Keras 3, faithful to their papers.

    import attention_zoo
    model = attention_zoo.get("cbam_resnet50", num_classes=5)
"""

from attention_zoo import layers, models, papers, pretrained, visualization
from attention_zoo.models import attention_outputs, feature_model, pyramid_outputs
from attention_zoo.registry import ModelInfo, Paper, UnknownModelError, get, list_models, model_info, register_model
from attention_zoo.utils import count_macs, count_params

__version__ = "0.1.0"

__all__ = [
    "ModelInfo",
    "Paper",
    "UnknownModelError",
    "attention_outputs",
    "count_macs",
    "count_params",
    "feature_model",
    "get",
    "layers",
    "list_models",
    "model_info",
    "models",
    "pretrained",
    "pyramid_outputs",
    "register_model",
    "visualization",
]
