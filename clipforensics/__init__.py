"""clipforensics: face deepfake detection and manipulation localization on CLIP's vision encoder."""

from .inference.predictor import Detector, Localizer, load
from .inference.results import Result

__version__ = "0.1.0"
__all__ = ["Detector", "Localizer", "Result", "load", "__version__"]
