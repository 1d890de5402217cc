"""One input's result, assembled from its scored pieces: per-frame and per-face detail, maps placed back
on the frames, files written as the frames come, and the verdict once the last piece is in."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..transforms import Preprocessing
from .calibration import Calibration, Decision
from .maps import frame_maps
from .outputs import OutputNames
from .prepare import Prepared
from .results import FaceResult, FrameResult, Result
from .rows import MAP_FILES
from .verdicts import VideoRule, box_area, judge, people_of
from .writers import InputFiles


@dataclass(frozen=True)
class Outputs:
    """What a run makes of each input besides its row."""

    annotate: Path | None
    save_maps: Path | None
    decision: Decision
    aggregate_by: str
    maps: bool
    calibration: Calibration | None = None
    rule: VideoRule = field(default_factory=VideoRule)

    @property
    def threshold(self) -> float:
        return self.decision.threshold

    @property
    def draws(self) -> bool:
        """Whether frames are drawn on (annotated copies, overlays): their images must be kept."""
        return self.annotate is not None or self.save_maps is not None


class ResultBuilder:
    """Gathers an input's pieces into its ``Result``. An image keeps its frame and map on the result; a video
    keeps its maps only when they are not written to files, so that it is never held whole."""

    def __init__(self, first: Prepared, names: OutputNames, outputs: Outputs, preprocessing: Preprocessing):
        self.result = Result(first.path, kind=first.kind)
        self.names, self.outputs, self.preprocessing = names, outputs, preprocessing
        self.files: InputFiles | None = None
        self.raw_frames: list[float] = []
        """Each scored frame's own p_fake, before calibration."""
        self.raw_people: dict[int, list[float]] = defaultdict(list)
        """Each person's faces' own p_fake, before calibration."""
        self.faces: dict[int, tuple[float, np.ndarray]] = {}
        """Each person's largest face so far: its box's area and aligned crop (their representative face's)."""

    def add(self, piece: Prepared, scores: list[float], face_maps: list[np.ndarray]) -> None:
        calibration = self.outputs.calibration
        remaining = iter(calibration.apply(score) for score in scores) if calibration else iter(scores)
        raw = iter(scores)
        maps = frame_maps(piece, iter(face_maps), self.preprocessing) if self.outputs.maps else [None] * len(
            piece.frames)
        image_input = piece.kind == "image"
        for frame, values in zip(piece.frames, maps):
            scored = FrameResult(frame.index, frame.timestamp, [
                FaceResult(None if face.face is None else [round(float(v), 1) for v in face.face.box],
                           None if face.face is None else round(face.face.score, 4), next(remaining, None),
                           face.person)
                for face in frame.faces])
            self.result.frames.append(scored)
            for face, shown in zip(frame.faces, scored.faces):
                if face.person is not None and (face.person not in self.faces
                                                or box_area(shown.box) > self.faces[face.person][0]):
                    self.faces[face.person] = (box_area(shown.box), face.crop)
            own = [(face.person, score) for face, score in ((face, next(raw, None)) for face in frame.faces)
                   if score is not None]
            for person, score in own:
                if person is not None:
                    self.raw_people[person].append(score)
            if own:
                self.raw_frames.append(max(score for _, score in own))
            if self.outputs.draws:
                self._files(piece).add(scored, frame.image, values)
            if image_input and frame.image is not None:
                self.result.images.append(frame.image)
            if values is not None and (image_input or self.outputs.save_maps is None):
                self.result.maps.append(values)

    def finish(self, last: Prepared) -> Result:
        """The verdict, once the input's last piece is in; files renamed into place (or removed on failure)."""
        result = self.result
        result.kind, result.notes, result.error = last.kind, last.notes, last.error
        if result.ok:
            outputs = self.outputs
            result.people = people_of(result.frames, self.raw_people, outputs.aggregate_by, outputs.decision,
                                      {person: crop for person, (_, crop) in self.faces.items()})
            judge(result, self.raw_frames, outputs.rule, outputs.aggregate_by, outputs.decision)
        if result.error is not None:
            result.images, result.maps = [], []
        if self.files is not None:
            written = self.files.finish(result.ok)
            result.files.update({key: path for key, path in written.items() if key in MAP_FILES})
        return result

    def _files(self, piece: Prepared) -> InputFiles:
        if self.files is None:
            self.files = InputFiles(piece.kind, piece.number, self.names, self.outputs.annotate,
                                    self.outputs.save_maps, self.outputs.threshold)
        return self.files
