"""Model families, one sub-package each. Importing this package imports every family, which
registers its variants with the factory: a new family is a new folder."""

import importlib
import pkgutil

from attention_zoo.models.common import attention_outputs, feature_model, pyramid_outputs

FAMILIES = sorted(
    module.name for module in pkgutil.iter_modules(__path__) if module.ispkg and not module.name.startswith("_")
)
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["FAMILIES", "attention_outputs", "feature_model", "pyramid_outputs"]
