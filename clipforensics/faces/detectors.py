"""The face detector backends by name, as the model families are: how each is built, the file it needs, and the
smallest face it looks for in a frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .detection import DlibCnnDetector, DlibHogDetector, Face, FaceDetector, dlib_box, landmarks68
from .mtcnn import MtcnnDetector
from .retinaface import RetinaFaceDetector

DLIB_SMALLEST = 64
"""dlib's detectors (no upsampling) find faces of about 64 px and more at the size they search."""
RETINAFACE_SMALLEST = 16
"""RetinaFace finds faces of about 16 px and more in its 640 px input."""


@dataclass(frozen=True)
class Search:
    """How frames are searched: ``max_side`` (None: at full size), ``min_face`` (None: the backend's own)."""

    max_side: int | None = None
    min_face: int | None = None

    def scale(self, height: int, width: int) -> float:
        """The factor frames of this size are searched at."""
        return min(self.max_side / max(height, width), 1.0) if self.max_side else 1.0


@dataclass(frozen=True)
class DetectorBackend:
    """``build(model_path, search)``; ``model_file``: the model file a backend reads from the path the user
    gives (never downloaded), None for one that ships with its package; ``smallest(height, width, search)``: the
    smallest face it looks for in a frame of that size, in the frame's pixels; ``min_face``: whether the smallest
    face is the user's to set; ``five_only``: whether it places five points only (dlib's predictor adds the 68)."""

    build: Callable[[Path | None, Search], FaceDetector]
    smallest: Callable[[int, int, Search], float]
    model_file: str | None = None
    min_face: bool = False
    five_only: bool = True


def _mtcnn_smallest(height: int, width: int, search: Search) -> float:
    return MtcnnDetector(search.min_face, search.max_side).min_face_in(height, width)


DETECTORS: dict[str, DetectorBackend] = {
    "mtcnn": DetectorBackend(lambda _, search: MtcnnDetector(search.min_face, search.max_side), _mtcnn_smallest,
                             min_face=True),
    "dlib-hog": DetectorBackend(lambda _, search: DlibHogDetector(max_side=search.max_side),
                                lambda h, w, search: DLIB_SMALLEST / search.scale(h, w), five_only=False),
    "dlib-cnn": DetectorBackend(lambda _, search: DlibCnnDetector(max_side=search.max_side),
                                lambda h, w, search: DLIB_SMALLEST / search.scale(h, w), five_only=False),
    "retinaface": DetectorBackend(lambda model_path, _: RetinaFaceDetector(model_path),
                                  lambda h, w, _: RETINAFACE_SMALLEST * max(h, w) / 640, "det_10g.onnx"),
}
BACKENDS = tuple(DETECTORS)
DEFAULT_BACKEND = "mtcnn"


def create_face_detector(backend: str = DEFAULT_BACKEND, model_path: str | Path | None = None,
                         search: Search = Search(), landmarks68: bool = False) -> FaceDetector:
    """``landmarks68``: every face carries dlib's 68 points (self-blended training images need them)."""
    if backend not in DETECTORS:
        raise ValueError(f"face detector must be one of {BACKENDS}, not {backend!r}")
    chosen = DETECTORS[backend]
    if chosen.model_file and model_path is None:
        raise ValueError(f"the {backend} backend needs the model file: pass {chosen.model_file}'s path")
    detector = chosen.build(Path(model_path) if model_path is not None else None, search)
    return With68Points(detector) if landmarks68 and chosen.five_only else detector


class With68Points:
    """A detector's faces with dlib's 68 points added, placed in the box dlib would draw around their five."""

    def __init__(self, detector: FaceDetector):
        self.detector = detector

    def detect(self, frame: np.ndarray) -> list[Face]:
        return [replace(face, landmarks68=landmarks68(frame, dlib_box(face.landmarks)))
                for face in self.detector.detect(frame)]
