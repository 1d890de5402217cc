"""A case report (``detect --report case.html``): one self-contained HTML file that a reader who was not there can
check a run's verdicts by.

A summary table (file, sha256 prefix, kind, verdict, p_fake, who decided), then a section per input: the picture
drawn with its faces' boxes and scores (over the manipulation map, or beside the explanation, when they were asked
for), or a video's chart of p_fake per frame and person with the threshold and its key frames drawn; its people;
its notes and files; and at the end the run's provenance (``inference.provenance``). Rendered through the
evaluation reports' templates; pictures are embedded as data URIs, so the file opens with no network and no
folder beside it. Each input's pictures are encoded as its result comes, so no frame is held for the whole run.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import ClipForensicsError
from ..words import counted
from .reports import flattened, readable, render_template

if TYPE_CHECKING:
    from ..inference.results import FrameResult, Person, Result
    from ..media import Frame

SHA256_SHOWN = 12
"""The hex digits of an input's sha256 the summary shows (the section shows all)."""
LARGEST_SIDE = 1024
"""Pictures are scaled down to this side at most before they are embedded."""
KEY_FRAMES = 3
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Picture:
    caption: str
    uri: str
    """A data URI: the picture embedded."""


@dataclass(frozen=True)
class Section:
    """One input, as the report shows it."""

    anchor: str
    path: str
    sha256: str | None
    kind: str
    verdict: str
    p_fake: str
    decided: str
    facts: list[tuple[str, str]]
    people: list[list[str]]
    pictures: list[Picture]

    @property
    def sha256_prefix(self) -> str:
        return self.sha256[:SHA256_SHOWN] if self.sha256 else "none"


PEOPLE_HEADER = ["person", "frames", "first (s)", "last (s)", "p_fake", "label", "box"]


class CaseReport:
    """Sections added as results come (``add``), the file written at the end (``write``): ``threshold`` is the
    p_fake drawn and charted as fake; ``header`` is the run's (``provenance.run_header``)."""

    people_header = PEOPLE_HEADER

    def __init__(self, path: str | Path, header: dict, threshold: float):
        self.path, self.header, self.threshold = Path(path), header, threshold
        self.sections: list[Section] = []

    @property
    def title(self) -> str:
        return f"Case report: {counted(len(self.sections), 'input')}"

    @property
    def provenance(self) -> list[tuple[str, str]]:
        """The run's header, a field a line."""
        return [(key, readable(value)) for key, value in flattened(self.header["run"])]

    def add(self, result: Result) -> None:
        """The input's section, its pictures drawn and encoded now."""
        number = len(self.sections)
        who = ", ".join(filter(None, (result.decided_by, None if result.deciding_person is None
                                      else f"person {result.deciding_person}")))
        self.sections.append(Section(
            f"input-{number}", result.path or f"input {number}", result.sha256, result.kind,
            result.label or ("error" if result.error else "none"), _number(result.p_fake), who or "none",
            _facts(result), [_person_row(person) for person in result.people], self._pictures(result)))

    def write(self) -> Path:
        """The HTML file, written under a ``.part`` name and renamed when complete."""
        staging = self.path.with_name(self.path.name + ".part")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging.write_text(render_template("case.html.j2", report=self))
        os.replace(staging, self.path)
        return self.path

    def _pictures(self, result: Result) -> list[Picture]:
        from ..inference.drawing import draw_faces

        if result.kind == "video":
            if not result.frames:
                return []
            pictures = [Picture(f"p_fake per sampled frame and person; the dotted line is the threshold "
                                f"({self.threshold:.3g})", _png(result.plot(self.threshold)))]
            frames = {frame.index: frame for frame in result.frames}
            return pictures + [Picture(f"frame {frame.index}" + (f" ({frame.timestamp:.2f} s)" if frame.timestamp
                                                                 is not None else ""),
                                       _jpeg(draw_faces(frame.image, frames[frame.index].faces, self.threshold)))
                               for frame in _key_frames(result, frames)]
        try:
            pictures = [Picture("the image, each face's box and p_fake" + (" over the manipulation map"
                                                                           if result.maps else ""),
                                _jpeg(result.plot(self.threshold)))]
            if result.explanations:
                pictures.append(Picture("where the model looked for the score each face's call rests on (its "
                                        "explanation: for fake where the head says fake, for real where it says real)",
                                        _jpeg(result.plot(self.threshold, explain=True))))
        except (ClipForensicsError, ValueError, OSError):  # an input that cannot be decoded has no picture
            return []
        return pictures


def _key_frames(result: Result, frames: dict[int, FrameResult]) -> list[Frame]:
    """The frames a reader checks first: the deciding person's largest face's, the highest-scored, the first with a
    face (at most ``KEY_FRAMES``, in order), decoded again from the file."""
    from ..media import read_frames

    chosen = []
    if result.deciding_person is not None:
        chosen.append(result.person(result.deciding_person).frame)
    scored = [frame for frame in frames.values() if frame.p_fake is not None]
    if scored:
        chosen += [max(scored, key=lambda frame: frame.p_fake).index, scored[0].index]
    indices = list(dict.fromkeys(chosen))[:KEY_FRAMES]
    return read_frames(result.path, indices) if indices and result.path else []


def _facts(result: Result) -> list[tuple[str, str]]:
    facts = [("sha256", result.sha256 or "none (not read)"), ("frames", str(len(result.frames))),
             ("faces", str(result.faces))]
    if result.p_fake_raw is not None and result.p_fake_raw != result.p_fake:
        facts.append(("p_fake before calibration", _number(result.p_fake_raw)))
    facts += [("error", result.error)] if result.error else []
    facts += [("note", note) for note in result.notes]
    facts += [(name, path) for name, path in result.files.items()]
    return facts


def _person_row(person: Person) -> list[str]:
    return [str(person.id), str(person.frames), _number(person.first), _number(person.last), _number(person.p_fake),
            person.label or "none", ", ".join(f"{value:.0f}" for value in person.box) if person.box else "none"]


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def _scaled(picture: np.ndarray) -> Image.Image:
    image = Image.fromarray(picture)
    image.thumbnail((LARGEST_SIDE, LARGEST_SIDE), Image.Resampling.LANCZOS)
    return image


def _jpeg(picture: np.ndarray) -> str:
    return _data_uri(picture, "JPEG", quality=JPEG_QUALITY)


def _png(picture: np.ndarray) -> str:
    return _data_uri(picture, "PNG")


def _data_uri(picture: np.ndarray, kind: str, **options: object) -> str:
    """The picture, scaled down (``LARGEST_SIDE``), encoded as ``kind`` and embedded."""
    encoded = io.BytesIO()
    _scaled(picture).save(encoded, kind, **options)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(encoded.getvalue()).decode("ascii")
