"""An input's verdict from its scored faces: its people's scores, and the video's from them.

``people`` (the default): a video's p_fake is the highest of its people's, counting the people seen in enough
sampled frames; a person's p_fake is the aggregate of their faces', so for one person it is the papers' protocol
(the mean of the face over the frames). ``largest``: the video's p_fake is the aggregate of its frames', a frame's
being its face's (the largest) or, with every face scored, the highest of its faces' (what the papers' code does
and the evaluate presets that reproduce them keep). A video whose faces were found in too few sampled frames is
``insufficient``, its p_fake kept. An image's verdict is its frame's either way, each of its faces a person.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..errors import OptionError
from ..metrics import aggregate
from .calibration import Decision
from .results import FaceResult, FrameResult, Person, Result

VIDEO_SCORES = ("people", "largest")
INSUFFICIENT = "insufficient"
"""The label of a video with too little evidence for a verdict."""
PERSON_FRAMES, PERSON_SHARE = 4, 0.25
"""A person counts in the video's score from this many sampled frames, or this share of the frames with a face
where that is fewer."""


@dataclass(frozen=True)
class VideoRule:
    """How a video's verdict comes from its faces: ``score`` people or largest; ``min_person_frames`` (None: 4, or
    25 % of the sampled frames with a face, whichever is smaller); ``min_face_frames``, the sampled frames with a
    face below which a video is ``insufficient`` (at most all its sampled frames are asked for)."""

    score: str = "people"
    min_person_frames: int | None = None
    min_face_frames: int = 4

    def __post_init__(self) -> None:
        if self.score not in VIDEO_SCORES:
            raise OptionError("video_score", f"the video score is one of {', '.join(VIDEO_SCORES)}, not {self.score!r}")
        for name in ("min_person_frames", "min_face_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionError(name, f"{name.replace('_', ' ')} is a whole number of at least 1, not {value!r}")

    def settings(self) -> dict:
        """The rule as the options that ask for it (``--video-score``, ``--min-person-frames``, ...)."""
        return {"video_score": self.score, "min_person_frames": self.min_person_frames,
                "min_face_frames": self.min_face_frames}

    def face_policy(self, policy: str) -> str:
        """Which faces of a video's frames are scored: every face for the people rule (each person is scored)."""
        return "all" if self.score == "people" else policy

    def person_frames(self, frames_with_faces: int) -> int:
        """The sampled frames a person must be seen in to count."""
        if self.min_person_frames is not None:
            return self.min_person_frames
        return max(1, min(PERSON_FRAMES, math.ceil(PERSON_SHARE * frames_with_faces)))


def people_of(frames: list[FrameResult], raw: dict[int, list[float]], aggregate_by: str, decision: Decision,
              crops: dict[int, np.ndarray] | None = None) -> list[Person]:
    """The people of an input's scored frames (faces without a person are nobody's), with ``raw``: each person's
    faces' p_fake before calibration, and ``crops``: each person's representative face's aligned crop, where kept."""
    faces: dict[int, list[tuple[FrameResult, FaceResult]]] = defaultdict(list)
    for frame in frames:
        for face in frame.faces:
            if face.person is not None:
                faces[face.person].append((frame, face))
    people = []
    for id, seen in sorted(faces.items()):
        scores = [face.p_fake for _, face in seen if face.p_fake is not None]
        p_fake = aggregate(scores, aggregate_by) if scores else None
        best_frame, best = max(seen, key=lambda pair: box_area(pair[1].box))
        people.append(Person(id, len({frame.index for frame, _ in seen}), seen[0][0].timestamp, seen[-1][0].timestamp,
                             p_fake, None if p_fake is None else decision.label(p_fake), best.box, best_frame.index,
                             [face for _, face in seen],
                             aggregate(raw[id], aggregate_by) if raw.get(id) else None, (crops or {}).get(id)))
    return people


def judge(result: Result, raw_frames: list[float], rule: VideoRule, aggregate_by: str, decision: Decision) -> None:
    """Sets the verdict of a scored ``result`` whose ``people`` are known: p_fake (and raw), label, who decided."""
    frame_scores = [frame.p_fake for frame in result.frames if frame.p_fake is not None]
    if not frame_scores:
        return
    result.decided_by = decision.name
    counted: list[Person] | None = None
    if result.kind != "video" or rule.score == "largest":
        result.p_fake = aggregate(frame_scores, aggregate_by)
        result.p_fake_raw = aggregate(raw_frames, aggregate_by)
    else:
        needed = rule.person_frames(result.frames_with_faces)
        scored = [person for person in result.people if person.p_fake is not None]
        counted = [person for person in scored if person.frames >= needed]
        decider = max(counted or scored, key=lambda person: person.p_fake)
        result.p_fake, result.p_fake_raw, result.deciding_person = decider.p_fake, decider.p_fake_raw, decider.id
    result.label = decision.label(result.p_fake)
    if result.kind == "video" and result.frames_with_faces < min(rule.min_face_frames, len(result.frames)):
        result.label = INSUFFICIENT
        result.notes.append(f"a face found in {result.frames_with_faces} of {len(result.frames)} sampled frames: too "
                            f"few for a verdict (--min-face-frames {rule.min_face_frames})")
    elif counted == []:
        result.label = INSUFFICIENT
        result.notes.append(f"no person seen in {needed} sampled frames, too few for a verdict (--min-person-frames); "
                            f"the most seen in {max(person.frames for person in scored)}")


def box_area(box: list[float] | None) -> float:
    """A face's size, by which a person's representative face is chosen (none: 0, a crop given as the face)."""
    return 0.0 if box is None else (box[2] - box[0]) * (box[3] - box[1])
