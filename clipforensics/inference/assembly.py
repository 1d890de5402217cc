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
from .results import EXPLAINS, FaceResult, FrameResult, Result
from .rows import MAP_FILES
from .verdicts import VideoRule, box_area, judge, people_of
from .writers import InputFiles


@dataclass
class Scored:
    """Faces' p_fake and, when asked for, their maps and explanations (with whether each explains the score for
    fake), in face order."""

    scores: list[float] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    explanations: list[np.ndarray] = field(default_factory=list)
    toward_fake: list[bool] = field(default_factory=list)

    def extend(self, other: Scored) -> None:
        self.scores += other.scores
        self.maps += other.maps
        self.explanations += other.explanations
        self.toward_fake += other.toward_fake

    def part(self, start: int, count: int) -> Scored:
        """The faces ``start`` to ``start + count``."""
        end = start + count
        return Scored(self.scores[start:end], self.maps[start:end], self.explanations[start:end],
                      self.toward_fake[start:end])


@dataclass(frozen=True)
class Outputs:
    """What a run makes of each input besides its row. ``explain``: the explanation method (None: no
    explanations); ``save_explanations``: the folder for each face's explanation file."""

    annotate: Path | None
    save_maps: Path | None
    decision: Decision
    aggregate_by: str
    maps: bool
    calibration: Calibration | None = None
    rule: VideoRule = field(default_factory=VideoRule)
    explain: str | None = None
    save_explanations: Path | None = None

    @property
    def threshold(self) -> float:
        return self.decision.threshold

    @property
    def draws(self) -> bool:
        """Whether frames are drawn on (annotated copies, overlays): their images must be kept."""
        return self.annotate is not None or self.save_maps is not None

    @property
    def writes(self) -> bool:
        """Whether files are written for each input (drawings, or explanation files)."""
        return self.draws or self.save_explanations is not None


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

    def add(self, piece: Prepared, scored_faces: Scored) -> None:
        calibration, scores = self.outputs.calibration, scored_faces.scores
        remaining = iter(calibration.apply(score) for score in scores) if calibration else iter(scores)
        raw = iter(scores)
        nothing = [None] * len(piece.frames)
        maps = frame_maps(piece, iter(scored_faces.maps), self.preprocessing) if self.outputs.maps else nothing
        explained = self.outputs.explain is not None and all(frame.image is not None for frame in piece.frames)
        placed = frame_maps(piece, iter(scored_faces.explanations), self.preprocessing) if explained else nothing
        explanations = iter(scored_faces.explanations)
        sides = iter(EXPLAINS[toward_fake] for toward_fake in scored_faces.toward_fake)
        image_input = piece.kind == "image"
        for frame, values, relevance in zip(piece.frames, maps, placed):
            scored = FrameResult(frame.index, frame.timestamp, [
                FaceResult(None if face.face is None else [round(float(v), 1) for v in face.face.box],
                           None if face.face is None else round(face.face.score, 4), next(remaining, None),
                           face.person, next(explanations, None), explains=next(sides, None))
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
            if self.outputs.writes:
                files = self._files(piece)
                files.add(scored, frame.image, values, relevance)
                for number, face in enumerate(scored.faces):
                    face.explanation_file = files.explanation_file(frame.index, number, face.explanation)
            if image_input and frame.image is not None:
                self.result.images.append(frame.image)
            if values is not None and (image_input or self.outputs.save_maps is None):
                self.result.maps.append(values)
            if relevance is not None and image_input:
                self.result.explanations.append(relevance)

    def finish(self, last: Prepared) -> Result:
        """The verdict, once the input's last piece is in; files renamed into place (or removed on failure)."""
        result = self.result
        result.kind, result.notes, result.error, result.sha256 = last.kind, last.notes, last.error, last.sha256
        if result.ok:
            outputs = self.outputs
            result.people = people_of(result.frames, self.raw_people, outputs.aggregate_by, outputs.decision,
                                      {person: crop for person, (_, crop) in self.faces.items()})
            judge(result, self.raw_frames, outputs.rule, outputs.aggregate_by, outputs.decision)
        if result.error is not None:
            result.images, result.maps, result.explanations = [], [], []
        if self.files is not None:
            written = self.files.finish(result.ok)
            result.files.update({key: path for key, path in written.items() if key in MAP_FILES})
        return result

    def _files(self, piece: Prepared) -> InputFiles:
        if self.files is None:
            self.files = InputFiles(piece.kind, piece.number, self.names, self.outputs.annotate,
                                    self.outputs.save_maps, self.outputs.threshold, self.outputs.save_explanations,
                                    self.preprocessing.size)
        return self.files
