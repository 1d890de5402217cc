"""Face detection and five-point alignment."""

from .align import AlignedFace, align_face
from .detection import Face, FaceDetector, choose_faces
from .detectors import create_face_detector

__all__ = ["AlignedFace", "Face", "FaceDetector", "align_face", "choose_faces", "create_face_detector"]
