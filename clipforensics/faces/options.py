"""How faces are found and cut out of frames: the options every command shares."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .align import RECIPES
from .detection import FaceDetector
from .detectors import BACKENDS, create_face_detector

FACE_MODES = ("auto", "none")
DEFAULT_FACE_MODES = {"detect": "auto", "localize": "none"}
"""The face mode of each task unless one is asked for: detection scores aligned faces (as detectors are trained),
localization maps whole images (as DeCLIP reads them)."""
FACE_POLICIES = ("largest", "all", "mask")


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found and cut out. ``mode="none"``: every frame already is an aligned face crop."""

    mode: str = "auto"
    backend: str = "dlib-hog"
    model_path: str | None = None
    """The ONNX file for the retinaface backend."""
    policy: str = "largest"
    recipe: str = "deepfakebench"
    crop_size: int | None = 256
    """Side of the aligned crop; None keeps the face's native size (GenD recipe)."""
    scale: float = 1.3
    max_side: int | None = 640
    """Frames are searched for faces at most this large (dlib backends); None searches full size."""

    def __post_init__(self) -> None:
        for name, value, valid in (("faces", self.mode, FACE_MODES), ("face detector", self.backend, BACKENDS),
                                   ("face policy", self.policy, FACE_POLICIES), ("alignment", self.recipe, RECIPES)):
            if value not in valid:
                raise UsageError(f"{name} must be one of {valid}, not {value!r}")

    def create_detector(self) -> FaceDetector | None:
        if self.mode != "auto":
            return None
        return create_face_detector(self.backend, self.model_path, self.max_side)
