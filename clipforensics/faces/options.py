"""How faces are found and cut out of frames: the options every command shares."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .align import RECIPES
from .detection import FaceDetector
from .detectors import BACKENDS, DEFAULT_BACKEND, DETECTORS, Search, create_face_detector

FACE_MODES = ("auto", "none")
DEFAULT_FACE_MODES = {"detect": "auto", "localize": "none"}
"""The face mode of each task unless one is asked for: detection scores aligned faces (as detectors are trained),
localization maps whole images (as DeCLIP reads them)."""
FACE_POLICIES = ("largest", "all", "mask")
SMALLEST_SEARCHABLE = 20
"""Below this, a face has too few pixels to be scored, whatever finds it."""


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found and cut out. ``mode="none"``: every frame already is an aligned face crop."""

    mode: str = "auto"
    backend: str = DEFAULT_BACKEND
    model_path: str | None = None
    """The ONNX file for the retinaface backend."""
    policy: str = "largest"
    recipe: str = "deepfakebench"
    crop_size: int | None = 256
    """Side of the aligned crop; None keeps the face's native size (GenD recipe)."""
    scale: float = 1.3
    max_side: int | None = None
    """Frames are searched for faces scaled down to at most this large (not retinaface, which has its own input
    size); None searches them at full size."""
    min_face: int | None = None
    """The smallest face searched for, in pixels of the searched frame (backends that take one: mtcnn); None:
    the backend's own (mtcnn: 64 px, or 4 % of the frame's short side where that is more)."""

    def __post_init__(self) -> None:
        for name, value, valid in (("faces", self.mode, FACE_MODES), ("face detector", self.backend, BACKENDS),
                                   ("face policy", self.policy, FACE_POLICIES), ("alignment", self.recipe, RECIPES)):
            if value not in valid:
                raise UsageError(f"{name} must be one of {valid}, not {value!r}")
        if self.min_face is not None and not DETECTORS[self.backend].min_face:
            raise UsageError(f"a smallest face size is for the mtcnn detector; {self.backend} finds faces of a "
                             "fixed size at the searched scale (a larger --face-max-side finds smaller ones)")

    @property
    def search(self) -> Search:
        return Search(self.max_side, self.min_face)

    def smallest_face(self, height: int, width: int) -> float:
        """The smallest face searched for in a frame of this size, in its pixels."""
        return DETECTORS[self.backend].smallest(height, width, self.search)

    def searched(self, height: int, width: int) -> str:
        """How frames of this size are searched, and what would search them for smaller faces, in words (options
        as on the command line)."""
        scale = self.search.scale(height, width)
        at = f"scaled to {round(width * scale)}x{round(height * scale)}" if scale < 1 else "at full size"
        smallest = self.smallest_face(height, width)
        said = f"searched {width}x{height} {at} with {self.backend} for faces of {round(smallest)} px and more"
        advice = []
        if scale < 1:
            advice.append("--face-max-side 0 searches at full size")
        if DETECTORS[self.backend].min_face and smallest * scale > SMALLEST_SEARCHABLE:
            size = max(SMALLEST_SEARCHABLE, round(smallest * scale / 2))
            advice.append(f"--face-min-size {size} looks for faces down to {size} px, slower")
        if self.backend != DEFAULT_BACKEND:
            advice.append(f"--face-detector {DEFAULT_BACKEND} finds smaller and turned faces")
        return "; ".join([said, *advice])

    def create_detector(self, landmarks68: bool = False) -> FaceDetector | None:
        """The detector these options ask for (None for ``mode="none"``); ``landmarks68``: its faces carry
        dlib's 68 points."""
        if self.mode != "auto":
            return None
        return create_face_detector(self.backend, self.model_path, self.search, landmarks68)
