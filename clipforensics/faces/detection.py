"""What a face detector gives (frame -> faces with boxes, scores, landmarks), dlib's two detectors, and which of a
frame's faces are scored. ``detectors`` names the backends."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import ClipForensicsError

@dataclass(frozen=True)
class Face:
    box: np.ndarray
    """x0, y0, x1, y1 in frame pixels."""
    score: float
    landmarks: np.ndarray
    """Five points [5, 2]: left eye, right eye, nose tip, left and right mouth corners (image left/right)."""
    landmarks68: np.ndarray | None = None
    """The 68 iBUG points [68, 2] where the backend gives them."""

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


def box_iou(a, b) -> float:
    """The overlap of two boxes (x0, y0, x1, y1; arrays or lists) over their union; 0 for empty boxes."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = float(np.prod(np.maximum(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0)))
    union = float(np.prod(np.maximum(a[2:] - a[:2], 0)) + np.prod(np.maximum(b[2:] - b[:2], 0))) - inter
    return inter / union if union > 0 else 0.0


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 frame, most confident first."""


def five_from_68(points: np.ndarray) -> np.ndarray:
    """Eye centres (means of the six eye points), nose tip (30), mouth corners (48, 54)."""
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]).astype(
        np.float32
    )


def face_models_folder() -> Path:
    """The offline dlib models shipped by ``face-recognition-models`` (found without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ClipForensicsError("face detection needs the package face-recognition-models (pip install it)")
    return Path(spec.submodule_search_locations[0]) / "models"


@cache
def landmark_model():
    """dlib's 68-point predictor: loaded once per process (about a second), read-only after."""
    import dlib

    return dlib.shape_predictor(str(face_models_folder() / "shape_predictor_68_face_landmarks.dat"))


def downscaled(frame: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """The frame shrunk so its longer side is at most ``max_side`` (None: as it is), and the scale applied."""
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame, 1.0
    scale = max_side / max(frame.shape[:2])
    size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale


def landmarks68(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's 68 points [68, 2] of the face in ``box`` (x0, y0, x1, y1: a box as dlib's detectors draw it)."""
    import dlib

    shape = landmark_model()(frame, dlib.rectangle(*(int(round(v)) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def dlib_box(points: np.ndarray) -> np.ndarray:
    """The box dlib's detectors would draw around a face with these five points (centred below the eyes' and
    mouth's midpoints, 2.26 times their distance a side), for dlib's 68-point predictor, which expects such a
    box."""
    eyes, mouth = points[:2].mean(0), points[3:].mean(0)
    span = float(np.linalg.norm(mouth - eyes))
    centre = (eyes + mouth) / 2 + 0.16 * (mouth - eyes)
    return np.concatenate([centre - 1.13 * span, centre + 1.13 * span])


class _DlibDetector(ABC):
    """Shared by the dlib backends: boxes on a downscaled frame, 68 landmarks on the full frame."""

    def __init__(self, threshold: float, upsample: int, max_side: int | None):
        self.threshold = threshold
        self.upsample = upsample
        self.max_side = max_side

    @abstractmethod
    def _boxes(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Boxes (x0, y0, x1, y1) and scores above the threshold."""

    def detect(self, frame: np.ndarray) -> list[Face]:
        frame = np.ascontiguousarray(frame)
        small, scale = downscaled(frame, self.max_side)
        faces = []
        for box, score in self._boxes(small):
            points = landmarks68(frame, box / scale)
            faces.append(Face((box / scale).astype(np.float32), score, five_from_68(points), points))
        return sorted(faces, key=lambda face: -face.score)


class DlibHogDetector(_DlibDetector):
    """dlib's frontal HOG detector (DeepfakeBench's choice); a score threshold of 0.5 keeps false
    positives out. Frames larger than ``max_side`` are searched downscaled (faces under about
    64 px at that scale are missed: 128 px in a 1280 px frame searched at 640)."""

    def __init__(self, threshold: float = 0.5, upsample: int = 0, max_side: int | None = None):
        super().__init__(threshold, upsample, max_side)

    @cached_property
    def _detector(self):
        import dlib

        return dlib.get_frontal_face_detector()

    def _boxes(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        rects, scores, _ = self._detector.run(frame, self.upsample, self.threshold)
        return [(np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64), float(s))
                for r, s in zip(rects, scores)]


class DlibCnnDetector(_DlibDetector):
    """dlib's MMOD CNN detector: slower, finds turned and smaller faces the HOG detector misses."""

    def __init__(self, threshold: float = 0.0, upsample: int = 0, max_side: int | None = None):
        super().__init__(threshold, upsample, max_side)

    @cached_property
    def _detector(self):
        import dlib

        return dlib.cnn_face_detection_model_v1(str(face_models_folder() / "mmod_human_face_detector.dat"))

    def _boxes(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        found = self._detector(frame, self.upsample)
        return [(np.array([d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()], dtype=np.float64),
                 float(d.confidence)) for d in found if d.confidence >= self.threshold]


def choose_faces(faces: list[Face], policy: str = "largest", mask: np.ndarray | None = None) -> list[Face]:
    """Which faces of a frame are scored: the largest (default), all, or the one a manipulation
    mask covers most (FF++ and DFD videos show several people; only one is manipulated)."""
    if not faces:
        return []
    if policy == "all":
        return faces
    if policy == "mask" and mask is not None:
        return [max(faces, key=lambda face: _mask_overlap(face, mask))]
    return [max(faces, key=lambda face: face.area)]


def _mask_overlap(face: Face, mask: np.ndarray) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    region = mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
    return float((region > 0).sum())
