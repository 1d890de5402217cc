"""clipforensics: face deepfake detection and manipulation localization on CLIP's vision encoder.

``clipforensics.load(name_or_path)`` gives a ``Predictor`` whose ``predict(sources)`` returns one
``Result`` per input. The names are loaded on first use, so importing the package (and running the
``clipforensics`` command's help) stays instant: torch and transformers load with the first model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Predictor", "Result", "load", "__version__"]

_LAZY = {
    "load": "clipforensics.inference.predictor",
    "Predictor": "clipforensics.inference.predictor",
    "Result": "clipforensics.inference.results",
}

if TYPE_CHECKING:
    from .inference.predictor import Predictor, load
    from .inference.results import Result


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'clipforensics' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
