"""What inference writes: result rows (JSONL / CSV), aligned crops, inputs drawn with boxes and scores."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image

from ..media import write_video
from .prepare import Prepared
from .results import SUMMARY_FIELDS, Result

FAKE_COLOUR = (230, 40, 40)
REAL_COLOUR = (40, 200, 60)
VIDEO_FPS = 4


def save_crops(prepared: Prepared, folder: Path, stem: Path) -> None:
    """``folder/<stem>/<frame>_<face>.png`` for every aligned face."""
    target = folder / stem
    target.mkdir(parents=True, exist_ok=True)
    for frame in prepared.frames:
        for number, face in enumerate(frame.faces):
            Image.fromarray(face.crop).save(target / f"{frame.index:06d}_{number}.png")


def annotate(prepared: Prepared, result: Result, folder: Path, stem: Path, threshold: float) -> Path:
    """The image (``<stem>.png``) or the sampled frames of a video (``<stem>.mp4``) with each face's
    box and p_fake drawn; returns the file written."""
    drawn = [_draw(frame.image, scored.faces, threshold)
             for frame, scored in zip(prepared.frames, result.frames) if frame.image is not None]
    target = folder / stem.with_suffix(".mp4" if prepared.kind == "video" else ".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    if prepared.kind == "video":
        write_video(drawn, target, VIDEO_FPS)
    else:
        Image.fromarray(drawn[0]).save(target)
    return target


def _draw(image: np.ndarray, faces, threshold: float) -> np.ndarray:
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(2, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        if face.box is None or face.p_fake is None:
            continue
        colour = FAKE_COLOUR if face.p_fake >= threshold else REAL_COLOUR
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        cv2.putText(canvas, f"p_fake {face.p_fake:.2f}", (x0, max(y0 - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX,
                    thickness / 3, colour, thickness)
    return canvas


class ResultWriter:
    """Writes rows as they come (``.jsonl`` with detail, ``.csv`` with the summary), flushed, so a
    stopped run keeps its rows."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise ValueError(f"output must end in .jsonl or .csv, not {self.path.name!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=SUMMARY_FIELDS) if suffix == ".csv" else None
        if self._csv:
            self._csv.writeheader()

    def write(self, result: Result) -> None:
        if self._csv:
            self._csv.writerow(result.summary())
        else:
            self._file.write(result.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
