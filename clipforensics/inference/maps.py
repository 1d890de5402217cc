"""Manipulation maps from model output back onto the frames: each face's map warped back through its
alignment, or the frame's own map resized to the frame."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from ..transforms import Preprocessing, map_to_image
from .prepare import Prepared


def frame_maps(prepared: Prepared, face_maps: Iterator[np.ndarray], prep: Preprocessing) -> list[np.ndarray]:
    """Per frame of ``prepared`` (its images kept), the map at the frame's size: the frame's own map when
    it was the model's input, else each face's map warped back through its alignment (the highest where
    faces overlap, 0 away from faces)."""
    maps = []
    for frame in prepared.frames:
        height, width = frame.image.shape[:2]
        placed = np.zeros((height, width), np.float32)
        for face in frame.faces:
            values = next(face_maps)
            if face.matrix is None:
                placed = map_to_image(values, prep, (height, width))
                continue
            on_crop = map_to_image(values, prep, face.crop.shape[:2])
            warped = cv2.warpAffine(on_crop, face.matrix, (width, height),
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0.0)
            placed = np.maximum(placed, warped)
        maps.append(placed)
    return maps
