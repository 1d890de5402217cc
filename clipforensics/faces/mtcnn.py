"""MTCNN as a face detector: the smallest face it searches for, and faces from the cascade (``cascade``, PyTorch,
imported on the first search so that the command line's help never loads torch)."""

from __future__ import annotations

import numpy as np

from .detection import Face, downscaled

MIN_FACE = 64
MIN_FACE_FRACTION = 0.04


def automatic_min_face(height: int, width: int) -> float:
    """The smallest face searched for when none is asked: 64 px, or 4 % of the frame's short side in frames
    over 1600 px (a 4K frame, a 24 MP photo), so the search's cost stays bounded by the frame's shape. (P-Net
    finds most faces down to about 0.6 of it too: ``bench/faces_wild.py``.)"""
    return max(MIN_FACE, MIN_FACE_FRACTION * min(height, width))


class MtcnnDetector:
    """MTCNN's cascade: faces from ``min_face`` px (None: ``automatic_min_face``) in frames searched at most
    ``max_side`` large (None: as they are), with O-Net's five points."""

    def __init__(self, min_face: int | None = None, max_side: int | None = None):
        self.min_face = min_face
        self.max_side = max_side

    def min_face_in(self, height: int, width: int) -> float:
        """The smallest face searched for in a frame of this size, in the frame's own pixels."""
        scale = min(self.max_side / max(height, width), 1.0) if self.max_side else 1.0
        return (self.min_face or automatic_min_face(round(height * scale), round(width * scale))) / scale

    def detect(self, frame: np.ndarray) -> list[Face]:
        from .cascade import detect

        small, scale = downscaled(np.ascontiguousarray(frame), self.max_side)
        boxes, scores, points = detect(small, self.min_face_in(*frame.shape[:2]) * scale)
        return [Face(box, float(score), five) for box, score, five in zip(boxes / scale, scores, points / scale)]
