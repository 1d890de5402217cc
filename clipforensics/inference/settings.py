"""What a score depends on besides the model and the input: how faces are found and cut out, which frames of a
video are read, and how its verdict comes from its faces. ``Predictor.iter_predict`` reads its options through
``ScoreSettings.of``, and a run's header records them (``to_dict``), so what is recorded is what was used."""

from __future__ import annotations

from dataclasses import dataclass

from ..faces.options import DEFAULT_FACE_MODES, FaceOptions
from ..media import DEFAULT_FRAMES, Sampler
from .verdicts import VideoRule


@dataclass(frozen=True)
class ScoreSettings:
    faces: FaceOptions
    sampler: Sampler
    aggregate_by: str
    rule: VideoRule

    @classmethod
    def of(cls, task: str, faces: str | FaceOptions | None = None, frames: int | Sampler = DEFAULT_FRAMES,
           aggregate_by: str = "mean", video_score: str = "people", min_person_frames: int | None = None,
           min_face_frames: int = 4) -> ScoreSettings:
        """The settings ``iter_predict``'s options ask for; ``task`` (detect, localize) decides the face mode
        when ``faces`` is None."""
        faces = DEFAULT_FACE_MODES[task] if faces is None else faces
        return cls(faces if isinstance(faces, FaceOptions) else FaceOptions(mode=faces),
                   frames if isinstance(frames, Sampler) else Sampler("uniform", frames), aggregate_by,
                   VideoRule(video_score, min_person_frames, min_face_frames))

    @classmethod
    def among(cls, task: str, options: dict) -> ScoreSettings:
        """The settings among a run's ``iter_predict`` options (the others, such as where files go, left aside)."""
        return cls.of(task, **{key: options[key] for key in SCORE_KEYWORDS if key in options})

    def to_dict(self) -> dict:
        """Each setting by the name of the option that sets it (``--frames``, ``--face-detector``, ...)."""
        return {**self.faces.settings(), **self.sampler.settings(), "aggregate": self.aggregate_by,
                **self.rule.settings()}


SCORE_KEYWORDS = ("faces", "frames", "aggregate_by", "video_score", "min_person_frames", "min_face_frames")
"""The keywords of ``iter_predict`` that ``ScoreSettings.of`` reads."""
