"""From one input to the model's crops: decode, sample frames, find and align faces, preprocess.

Runs in worker threads ahead of the model, a piece of at most a few dozen frames at a time: a long video
is decoded, searched for faces and scored piece by piece, so memory does not grow with its length. The
model sees the crops of many frames and inputs in one batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ClipForensicsError, MediaError
from ..faces.align import align_face
from ..faces.detection import Face, FaceDetector, choose_faces
from ..faces.options import FaceOptions
from ..faces.people import PeopleLinker
from ..faces.search import searching
from ..media import Frame, Media, Sampler, open_media, to_rgb
from ..transforms import Preprocessing, resize_and_crop
from ..urls import readable


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
    person: int | None = None
    """Who the face is: in a video, linked through its frames (``faces.people``); in an image, its face's number."""


@dataclass
class PreparedFrame:
    index: int
    timestamp: float | None
    faces: list[PreparedFace]
    image: np.ndarray | None = None
    """The whole frame, kept only when it is to be annotated."""


@dataclass
class Prepared:
    """A piece of an input ready for the model (a few of its frames), or the reason the input is not. The
    input's last piece says so (``last``) and carries its notes and, when it failed, its error."""

    path: str | None
    number: int = 0
    """The input's position in the run."""
    kind: str = "image"
    frames: list[PreparedFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    last: bool = True
    sampled: int | None = None
    """How many frames the whole input gives, once it is opened."""
    sha256: str | None = None
    """On the last piece: the input file's (``Media.sha256``)."""

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
    number: int = 0,
    piece_frames: int = 32,
    max_pixels: int | None = None,
    video_policy: str | None = None,
) -> Iterator[Prepared]:
    """The input's pieces of at most ``piece_frames`` frames, in order; never raises for a bad input: the
    error goes into the last piece. ``keep_frames`` keeps each frame's image (to draw on or map).
    ``video_policy``: which faces of a video's frames are scored (default: as ``faces`` says). Each face is given
    its person: a video's are linked through its frames."""
    path = str(source) if isinstance(source, (str, Path)) else None
    piece = Prepared(path, number, last=False)
    sampled, faceless, shape = 0, [], (0, 0)
    try:
        with readable(source) as readable_source:
            media = _open(readable_source, sampler, max_pixels)
            piece.kind = media.kind
            piece.sampled = len(sampler.pick(media.total_frames)) if media.kind == "video" else 1
            video = detector is not None and media.kind == "video"
            search = searching(detector, media.kind)
            policy = (video_policy or faces.policy) if media.kind == "video" else faces.policy
            linker = PeopleLinker() if video else None
            for frame in media.frames:
                chosen = _faces(frame, faces, search, policy)
                people = linker.link(frame.image, [face for face, _, _ in chosen]) if linker else \
                    [0 if media.kind == "video" else number for number in range(len(chosen))]
                found = [PreparedFace(face, crop, resize_and_crop(Image.fromarray(crop), preprocessing), matrix, person)
                         for (face, crop, matrix), person in zip(chosen, people)]
                piece.frames.append(PreparedFrame(frame.index, frame.timestamp, found,
                                                  frame.image if keep_frames else None))
                sampled += 1
                shape = frame.image.shape[:2]
                if not found:
                    faceless.append(frame.index)
                if len(piece.frames) == piece_frames:
                    yield piece
                    piece = Prepared(path, number, media.kind, last=False, sampled=piece.sampled)
    except MediaError as error:
        yield Prepared(path, number, error.kind or piece.kind, error=str(error))
        return
    except ClipForensicsError as error:
        yield Prepared(path, number, piece.kind, error=str(error))
        return
    piece.notes, piece.sha256, piece.last = list(media.notes), media.sha256, True
    _report_faceless(piece, sampled, faceless, faces, shape)
    yield piece


def _open(source: str | Path | Image.Image | np.ndarray, sampler: Sampler, max_pixels: int | None) -> Media:
    if isinstance(source, (str, Path)):
        return open_media(source, sampler, max_pixels)
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


def _faces(frame: Frame, options: FaceOptions, detector: FaceDetector | None,
           policy: str) -> list[tuple[Face | None, np.ndarray, np.ndarray | None]]:
    if detector is None:
        return [(None, frame.image, None)]
    aligned = [(face, align_face(frame.image, face.landmarks, options.recipe, options.crop_size, options.scale))
               for face in choose_faces(detector.detect(frame.image), policy)]
    return [(face, crop.crop, crop.matrix) for face, crop in aligned]


def _report_faceless(last: Prepared, sampled: int, faceless: list[int], faces: FaceOptions,
                     shape: tuple[int, int]) -> None:
    """On the input's last piece: an error when no frame had a face (saying how the frames, ``shape`` large,
    were searched, and what would search them further), else a note naming the frames without one."""
    if not faceless:
        return
    if len(faceless) == sampled:
        what = "image" if last.kind == "image" else f"any of the {sampled} sampled frames"
        last.error = f"no face found in {what} ({faces.searched(*shape)})"
    else:
        shown = ", ".join(map(str, faceless[:10])) + (", ..." if len(faceless) > 10 else "")
        last.notes.append(f"no face in {len(faceless)} of {sampled} frames ({shown})")
