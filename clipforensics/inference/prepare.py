"""From one input to the model's crops: decode, sample frames, find and align faces, preprocess.

Runs in worker threads ahead of the model; the model then sees the crops of many frames and
inputs in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ClipForensicsError, MediaError
from ..faces.align import align_face
from ..faces.detection import Face, FaceDetector, choose_faces
from ..faces.options import FaceOptions
from ..media import Frame, Media, Sampler, read_media, to_rgb
from ..transforms import Preprocessing, resize_and_crop

@dataclass
class PreparedFace:
    face: Face | None
    """None when the frame itself is the crop (``mode="none"``)."""
    crop: np.ndarray
    """The aligned face (what ``--save-crops`` writes)."""
    pixels: np.ndarray
    """The model's input before normalisation, uint8 [size, size, 3]."""
    matrix: np.ndarray | None = None
    """2x3 similarity from frame to crop coordinates (None when the frame is the crop)."""


@dataclass
class PreparedFrame:
    index: int
    timestamp: float | None
    faces: list[PreparedFace]
    image: np.ndarray | None = None
    """The whole frame, kept only when it is to be annotated."""


@dataclass
class Prepared:
    """An input ready for the model, or the reason it is not."""

    path: str | None
    kind: str = "image"
    frames: list[PreparedFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def crops(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)


def prepare(
    source: str | Path | Image.Image | np.ndarray,
    preprocessing: Preprocessing,
    faces: FaceOptions,
    detector: FaceDetector | None,
    sampler: Sampler = Sampler(),
    keep_frames: bool = False,
) -> Prepared:
    """Never raises for a bad input: the error goes into ``Prepared.error``."""
    path = str(source) if isinstance(source, (str, Path)) else None
    try:
        media = _read(source, sampler)
        prepared = Prepared(path, media.kind, notes=list(media.notes))
        for frame in media.frames:
            found = [PreparedFace(face, crop, resize_and_crop(Image.fromarray(crop), preprocessing), matrix)
                     for face, crop, matrix in _faces(frame, faces, detector)]
            prepared.frames.append(PreparedFrame(frame.index, frame.timestamp, found,
                                                 frame.image if keep_frames else None))
    except ClipForensicsError as error:
        return Prepared(path, error=str(error))
    _report_faceless(prepared)
    return prepared


def _read(source: str | Path | Image.Image | np.ndarray, sampler: Sampler) -> Media:
    if isinstance(source, (str, Path)):
        return read_media(source, sampler)
    image = source if isinstance(source, Image.Image) else array_image(source)
    return Media(None, "image", [Frame(0, None, np.asarray(to_rgb(image)))])


def array_image(array: np.ndarray) -> Image.Image:
    """A uint8 array ([H, W], [H, W, 3] RGB or [H, W, 4] RGBA) as a PIL image."""
    channels = 1 if array.ndim == 2 else array.shape[-1]
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or channels not in (1, 3, 4):
        raise MediaError(
            f"arrays must be uint8 [H, W], [H, W, 3] (RGB) or [H, W, 4], got {array.dtype} {list(array.shape)}"
        )
    return Image.fromarray(array.squeeze(-1) if array.ndim == 3 and channels == 1 else array)


def _faces(frame: Frame, options: FaceOptions,
           detector: FaceDetector | None) -> list[tuple[Face | None, np.ndarray, np.ndarray | None]]:
    if detector is None:
        return [(None, frame.image, None)]
    aligned = [(face, align_face(frame.image, face.landmarks, options.recipe, options.crop_size, options.scale))
               for face in choose_faces(detector.detect(frame.image), options.policy)]
    return [(face, crop.crop, crop.matrix) for face, crop in aligned]


def _report_faceless(prepared: Prepared) -> None:
    faceless = [frame.index for frame in prepared.frames if not frame.faces]
    if not faceless:
        return
    if len(faceless) == len(prepared.frames):
        what = "image" if prepared.kind == "image" else f"any of the {len(faceless)} sampled frames"
        prepared.error = f"no face found in {what}"
    else:
        shown = ", ".join(map(str, faceless[:10])) + (", ..." if len(faceless) > 10 else "")
        prepared.notes.append(f"no face in {len(faceless)} of {len(prepared.frames)} frames ({shown})")
