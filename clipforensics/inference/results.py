"""Per-input verdicts, with per-frame and per-face detail; the rows they are written as are ``rows``'s."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .rows import detection_row, person_row, summary_row

EXPLAINS = {True: "fake", False: "real"}
"""``FaceResult.explains`` from whether the map explains the score for fake."""


@dataclass
class FaceResult:
    box: list[float] | None
    """x0, y0, x1, y1 in the frame; None when the input was already a face crop."""
    score: float | None
    p_fake: float | None = None
    person: int | None = None
    """The id of the person the face shows (``Result.people``)."""
    explanation: np.ndarray | None = field(default=None, repr=False)
    """With ``explain``: where the model looked for the score its verdict rests on, float32 [grid, grid] over the
    model's input crop (one value per patch), non-negative, the largest 1 (``models.explanation``)."""
    explanation_file: str | None = None
    """The explanation's file (8-bit grey over the model's input crop), when written."""
    explains: str | None = None
    """With ``explain``: which score the map explains, ``"fake"`` (``s = z_fake - z_real``, the head calls the face
    fake) or ``"real"`` (``-s``); the head's own call, at p_fake 0.5 before any operating threshold."""


@dataclass
class FrameResult:
    index: int
    timestamp: float | None
    faces: list[FaceResult] = field(default_factory=list)

    @property
    def p_fake(self) -> float | None:
        """The frame's score: its face's p_fake, or the highest of its faces' when all are scored."""
        scores = [face.p_fake for face in self.faces if face.p_fake is not None]
        return max(scores) if scores else None


@dataclass
class Person:
    """One person of an input: in a video, the faces linked through its sampled frames (``faces.people``); in an
    image, one face."""

    id: int
    frames: int
    """How many sampled frames show them."""
    first: float | None
    """The timestamp of the first (None for an image, or a video without timestamps)."""
    last: float | None
    p_fake: float | None
    """The aggregate of their faces' p_fake (``aggregate_by``, as a video's frames)."""
    label: str | None
    box: list[float] | None
    """Their representative face's box: the largest."""
    frame: int
    """The index of the frame their representative face is in."""
    faces: list[FaceResult] = field(default_factory=list, repr=False)
    p_fake_raw: float | None = None
    face: np.ndarray | None = field(default=None, repr=False)
    """Their representative face's aligned crop, RGB uint8 (``without_arrays`` drops it)."""

    def to_dict(self) -> dict:
        """What the row's ``people`` holds for them (``rows.PERSON_FIELDS``)."""
        return person_row(self)


@dataclass
class Result:
    """The verdict on one input (an image or a whole video); ``error`` is set, and ``p_fake`` is
    None, when it could not be scored. ``notes`` says what a reader should know (damaged stream,
    frames without a face)."""

    path: str | None
    p_fake: float | None = None
    """Calibrated when the model carries a calibration (``p_fake_raw`` is then the model's own score)."""
    label: str | None = None
    """fake, real, or uncertain (inside the band asked for), as ``decided_by`` says."""
    error: str | None = None
    kind: str = "image"
    frames: list[FrameResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    p_fake_raw: float | None = None
    """The model's own p_fake, before calibration (equal to ``p_fake`` for a model without one)."""
    decided_by: str | None = None
    """The operating point that turned p_fake into the label: a threshold's name (eer, fpr@1%, f1) or value."""
    people: list[Person] = field(default_factory=list)
    """The people whose faces were scored, by id (in order of first appearance)."""
    deciding_person: int | None = None
    """The person whose p_fake is the video's (``--video-score people``)."""
    sha256: str | None = None
    """The input file's sha256, from the bytes its decoding read (None for an input held in memory, or a file that
    could not be opened)."""
    files: dict[str, str] = field(default_factory=dict)
    """Files written for this input (``mask``, ``overlay``)."""
    maps: list[np.ndarray] = field(default_factory=list, repr=False)
    """From a localizer: per frame, the probability of manipulation of each pixel, float32 [H, W] at
    the frame's size (outside the faces 0 when faces were found)."""
    images: list[np.ndarray] = field(default_factory=list, repr=False)
    """The sampled frames, RGB uint8, when kept: for in-memory inputs, and when annotating or mapping."""
    explanations: list[np.ndarray] = field(default_factory=list, repr=False)
    """For an image predicted with ``explain``: its faces' explanations placed back through their alignments,
    float32 [H, W] at the image's size (0 away from faces)."""

    @property
    def map(self) -> np.ndarray | None:
        """The image's map (the first frame's for a video)."""
        return self.maps[0] if self.maps else None

    def person(self, id: int) -> Person:
        """The person with this id."""
        for person in self.people:
            if person.id == id:
                return person
        raise KeyError(f"no person {id} in {self.path or 'this input'}: its people are "
                       f"{[person.id for person in self.people]}")

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def faces(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    @property
    def frames_with_faces(self) -> int:
        return sum(1 for frame in self.frames if frame.faces)

    def summary(self) -> dict:
        """One flat row: what the CSV holds (``rows.summary_row``)."""
        return summary_row(self)

    def to_dict(self) -> dict:
        """The summary, the map files written for the input, and per-frame and per-face detail: what a JSONL
        row holds (``rows.detection_row``)."""
        return detection_row(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def without_arrays(self) -> Result:
        """The row alone, its maps, frames, explanations and people's faces dropped: what travels between processes
        or is kept in bulk."""
        return replace(self, maps=[], images=[], explanations=[],
                       people=[replace(person, face=None) for person in self.people])

    def plot(self, threshold: float = 0.5, explain: bool = False) -> np.ndarray:
        """A picture of the verdict, RGB uint8: for an image, the image with each face's box and p_fake
        (over the map's heatmap when there is a map; with ``explain``, over the faces' explanations instead), or
        why no face was scored; for a video, each person's p_fake over time, a line each in their colour, and the
        threshold."""
        from .drawing import draw_faces, overlay, timeline

        if self.kind == "video":
            who = f" (person {self.deciding_person})" if self.deciding_person is not None else ""
            return timeline(self.frames, threshold, f"{self.path or 'video'}: p_fake {_shown(self.p_fake)}{who}, "
                                                    f"{self.label or 'no verdict'}")
        image = self.images[0] if self.images else self._reread()
        if explain and not self.explanations and self.faces:
            raise ValueError("this result has no explanations: predict with explain=True")
        if explain and self.explanations:
            image = overlay(image, self.explanations[0])
        elif self.maps:
            image = overlay(image, self.maps[0])
        return draw_faces(image, self.frames[0].faces if self.frames else [], threshold,
                          self.error or "no face scored")

    def save(self, path: str | Path, threshold: float = 0.5, explain: bool = False) -> Path:
        """Writes ``plot()`` as an image file (PNG, JPEG, ... by the suffix) and returns its path."""
        from PIL import Image

        path = Path(path)
        if self.path is not None and path.resolve() == Path(self.path).resolve():
            raise ValueError(f"{path} is the input itself: choose another file to save the plot to")
        Image.fromarray(self.plot(threshold, explain)).save(path)
        return path

    def _reread(self) -> np.ndarray:
        from ..media import load_image

        if self.path is None:
            raise ValueError("this result kept no image to draw on")
        return np.asarray(load_image(self.path))


def _shown(p_fake: float | None) -> str:
    return "n/a" if p_fake is None else f"{p_fake:.2f}"
