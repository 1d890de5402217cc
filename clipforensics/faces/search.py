"""Faces through a video's sampled frames, found at less than a full search's cost per frame.

A full search of a frame looks for faces of every size everywhere; between two sampled frames a face moves
little, so most frames need only a look around the faces the last frame had. A full search runs every
``FULL_SEARCH_EVERY`` sampled frames (so a person who walks in is found within that many), and on any frame
where the look around loses a face (it left, turned away, or moved farther than the region reaches).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .detection import Face, FaceDetector, box_iou

FULL_SEARCH_EVERY = 4
REGION_REACH = 1.0
"""A region reaches this many face sides beyond each side of the face's last box."""
REGION_FACE = 128
"""A region is scaled so the face's last box is this many pixels a side (so a detector that finds faces of
64 px and more finds it again when it has shrunk to half)."""


def searching(detector: FaceDetector | None, kind: str) -> FaceDetector | None:
    """How one input's frames are searched: a video's through a ``VideoFaceSearch`` (its own, following its faces),
    an image's by the detector itself (None: no search)."""
    return VideoFaceSearch(detector) if detector is not None and kind == "video" else detector


class VideoFaceSearch:
    """``detect`` for one video's sampled frames, in order (a new search for every video)."""

    def __init__(self, detector: FaceDetector, full_every: int = FULL_SEARCH_EVERY):
        self.detector = detector
        self.full_every = full_every
        self.frames = 0
        self.known: list[Face] = []

    def detect(self, frame: np.ndarray) -> list[Face]:
        due = self.frames % self.full_every == 0 or not self.known
        self.frames += 1
        found = [] if due else self._around_known(frame)
        if due or len(found) < len(self.known):
            found = self.detector.detect(frame)
        self.known = found
        return found

    def _around_known(self, frame: np.ndarray) -> list[Face]:
        found: list[Face] = []
        for known in self.known:
            for face in self._around(frame, known.box):
                if all(box_iou(face.box, other.box) < 0.5 for other in found):
                    found.append(face)
        return sorted(found, key=lambda face: -face.score)

    def _around(self, frame: np.ndarray, box: np.ndarray) -> list[Face]:
        """Faces in the region around ``box``, in frame coordinates."""
        side = float(max(box[2] - box[0], box[3] - box[1]))
        centre = (box[:2] + box[2:]) / 2
        half = side * (0.5 + REGION_REACH)
        x0, y0 = np.maximum(np.floor(centre - half).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(centre + half).astype(int), [frame.shape[1], frame.shape[0]])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return []
        scale = REGION_FACE / side
        region = np.ascontiguousarray(frame[y0:y1, x0:x1])
        size = (max(round((x1 - x0) * scale), 1), max(round((y1 - y0) * scale), 1))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        offset = np.array([x0, y0], np.float32)
        return [_moved(face, scale, offset) for face in self.detector.detect(region)]


def _moved(face: Face, scale: float, offset: np.ndarray) -> Face:
    """A face found in a region scaled by ``scale`` from ``offset``, in frame coordinates."""
    def back(points: np.ndarray) -> np.ndarray:
        return (points / scale + offset).astype(np.float32)

    return replace(face, box=back(face.box.reshape(2, 2)).reshape(4), landmarks=back(face.landmarks),
                   landmarks68=None if face.landmarks68 is None else back(face.landmarks68))
