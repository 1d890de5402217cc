"""Manipulation maps from model output to files: each face's map warped back onto its frame, and the
``.mask.png`` / ``.overlay.png`` (``.overlay.mp4`` for a video) written for each input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..media import write_video
from .prepare import Prepared
from .results import Result
from ..transforms import Preprocessing, map_to_image

OVERLAY_FPS = 4
OVERLAY_OPACITY = 0.5


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


def overlay(image: np.ndarray, values: np.ndarray, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """The map as a heatmap (jet: blue untouched, red manipulated) over the RGB image, weighted by the map
    itself so untouched regions stay close to the image."""
    heat = cv2.cvtColor(cv2.applyColorMap(_levels(values), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = (opacity * np.clip(values, 0.0, 1.0))[..., None]
    return (image * (1 - weight) + heat * weight).round().astype(np.uint8)


def write_map_files(result: Result, images: list[np.ndarray], folder: Path, stem: Path) -> tuple[str, str]:
    """``<stem>.mask.png`` (8-bit probability) and ``<stem>.overlay.png`` for an image; for a video,
    ``<stem>.mask/<frame>.png`` per sampled frame and ``<stem>.overlay.mp4``. Returns both paths."""
    base = folder / stem
    base.parent.mkdir(parents=True, exist_ok=True)
    drawn = [overlay(image, values) for image, values in zip(images, result.maps)]
    if result.kind == "video":
        masks = base.with_name(base.name + ".mask")
        masks.mkdir(exist_ok=True)
        for frame, values in zip(result.frames, result.maps):
            Image.fromarray(_levels(values)).save(masks / f"{frame.index:06d}.png")
        overlaid = base.with_name(base.name + ".overlay.mp4")
        write_video(drawn, overlaid, OVERLAY_FPS)
        return str(masks), str(overlaid)
    mask, overlaid = base.with_name(base.name + ".mask.png"), base.with_name(base.name + ".overlay.png")
    Image.fromarray(_levels(result.maps[0])).save(mask)
    Image.fromarray(drawn[0]).save(overlaid)
    return str(mask), str(overlaid)


def _levels(values: np.ndarray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255).round().astype(np.uint8)
