"""The face detector backends by name, as the model families are: how each is built, and the file it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .detection import DlibCnnDetector, DlibHogDetector, FaceDetector
from .retinaface import RetinaFaceDetector


@dataclass(frozen=True)
class DetectorBackend:
    """``build(model_path, max_side)``; ``model_file``: the model file a backend reads from the path the user
    gives (never downloaded), None for one that ships with its package."""

    build: Callable[[Path | None, int | None], FaceDetector]
    model_file: str | None = None


DETECTORS: dict[str, DetectorBackend] = {
    "dlib-hog": DetectorBackend(lambda _, max_side: DlibHogDetector(max_side=max_side)),
    "dlib-cnn": DetectorBackend(lambda _, max_side: DlibCnnDetector(max_side=max_side)),
    "retinaface": DetectorBackend(lambda model_path, _: RetinaFaceDetector(model_path), "det_10g.onnx"),
}
BACKENDS = tuple(DETECTORS)


def create_face_detector(backend: str = "dlib-hog", model_path: str | Path | None = None,
                         max_side: int | None = 640) -> FaceDetector:
    """``max_side``: frames are searched at most this large (dlib backends; None = full size)."""
    if backend not in DETECTORS:
        raise ValueError(f"face detector must be one of {BACKENDS}, not {backend!r}")
    detector = DETECTORS[backend]
    if detector.model_file and model_path is None:
        raise ValueError(f"the {backend} backend needs the model file: pass {detector.model_file}'s path")
    return detector.build(Path(model_path) if model_path is not None else None, max_side)
