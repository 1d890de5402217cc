"""The row: what an input's ``Result`` becomes in every output, defined here once. ``detect`` writes the detection
row (JSONL, Ray parts, the service's answers) and its summary (the CSV columns); ``localize`` writes the
localization row (results.jsonl, the service's answers with the map files as URLs). The service serves
``schema()`` to its page, which builds its CSV download from it and shows each person of a row."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .results import FaceResult, FrameResult, Person, Result

SUMMARY: dict[str, Callable[[Result], Any]] = {
    "path": lambda result: result.path,
    "p_fake": lambda result: result.p_fake,
    "label": lambda result: result.label,
    "kind": lambda result: result.kind,
    "faces": lambda result: result.faces,
    "frames": lambda result: len(result.frames),
    "frames_with_faces": lambda result: result.frames_with_faces,
    "frames_without_faces": lambda result: len(result.frames) - result.frames_with_faces,
    "error": lambda result: result.error,
    "note": lambda result: "; ".join(result.notes) or None,
    "p_fake_raw": lambda result: result.p_fake_raw,
    "decided_by": lambda result: result.decided_by,
    "deciding_person": lambda result: result.deciding_person,
    "sha256": lambda result: result.sha256,
}
"""Each summary field and how it is read from a ``Result``, in column order."""
CSV_COLUMNS = tuple(SUMMARY)
"""A CSV row's columns: ``detect --output x.csv``, a Ray run's CSV, the page's CSV download."""
MAP_FILES = ("mask", "overlay")
"""The files a localizer writes for an input."""
PEOPLE = "people"
"""The detection row's people (``PERSON_FIELDS`` each), after the summary (and the map files, when written)."""
PERSON_FIELDS = ("id", "frames", "first", "last", "p_fake", "label", "box", "frame")
"""A person's fields in the row's ``people`` (``results.Person``)."""
PERSON_FACE = "face"
"""In the service's rows, each person's representative face (the largest, as its ``box``): its aligned crop as a
JPEG data URL ``FACE_SIDE`` pixels a side, the page's thumbnail; None where the crop was not kept."""
FACE_SIDE, FACE_QUALITY = 96, 85
DETAIL = "detail"
"""The detection row's per-frame and per-face detail (each face with its person, and its explanation's file when
one was written), after the people."""
FACE_FIELDS = ("box", "score", "p_fake", "person")
"""A face's fields in the detail; ``explanation`` (its file) and ``explains`` (``"fake"`` or ``"real"``: which
score the map explains) follow when written."""
LOCALIZATION_FIELDS = ("path", "p_fake", "label", "kind", *MAP_FILES, "error", "note", "p_fake_raw", "decided_by",
                       "sha256")
"""A localization row's fields, in order: the map files among the summary's fields that judge a map."""


def summary_row(result: Result) -> dict:
    """The flat summary: what a CSV row holds."""
    return {column: read(result) for column, read in SUMMARY.items()}


def detection_row(result: Result, faces: bool = False) -> dict:
    """The summary, the map files written for the input, its people (with ``faces``, each with their
    ``PERSON_FACE``, as the service answers), and per-frame and per-face detail: a JSONL row."""
    return {**summary_row(result), **{key: result.files[key] for key in MAP_FILES if key in result.files},
            PEOPLE: [{**person_row(person), **({PERSON_FACE: face_url(person.face)} if faces else {})}
                     for person in result.people],
            DETAIL: [_frame_dict(frame) for frame in result.frames]}


def person_row(person: Person) -> dict:
    """What the row's ``people`` holds for a person."""
    return {name: getattr(person, name) for name in PERSON_FIELDS}


def face_url(face: np.ndarray | None) -> str | None:
    """A face crop (RGB uint8) as a small JPEG data URL: a thumbnail that travels inside the row."""
    if face is None:
        return None
    from PIL import Image

    encoded = io.BytesIO()
    Image.fromarray(face).resize((FACE_SIDE, FACE_SIDE), Image.Resampling.LANCZOS).save(
        encoded, "JPEG", quality=FACE_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(encoded.getvalue()).decode("ascii")


def localization_row(result: Result, url: Callable[[str], str] = str) -> dict:
    """A row of ``localize``'s results.jsonl: each map file as ``url(path)`` (the path itself by default), None
    when not written."""
    files = {key: url(result.files[key]) if key in result.files else None for key in MAP_FILES}
    return {name: files[name] if name in files else SUMMARY[name](result) for name in LOCALIZATION_FIELDS}


def schema() -> dict[str, list[str]]:
    """The rows' fields (a person's as the service gives them, with their face) and the CSV columns, as the
    service gives them to its page."""
    return {"csv_columns": list(CSV_COLUMNS), "detection_fields": [*CSV_COLUMNS, *MAP_FILES, PEOPLE, DETAIL],
            "person_fields": [*PERSON_FIELDS, PERSON_FACE], "localization_fields": list(LOCALIZATION_FIELDS),
            "map_files": list(MAP_FILES)}


def _frame_dict(frame: FrameResult) -> dict:
    return {"index": frame.index, "timestamp": frame.timestamp, "p_fake": frame.p_fake,
            "faces": [_face_dict(face) for face in frame.faces]}


def _face_dict(face: FaceResult) -> dict:
    row = {name: getattr(face, name) for name in FACE_FIELDS}
    if face.explanation_file is None:
        return row
    return {**row, "explanation": face.explanation_file, "explains": face.explains}
