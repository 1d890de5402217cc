"""What inference writes: result rows (JSONL / CSV), aligned crops, inputs drawn with boxes and scores,
and mask and overlay files of maps."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO

from PIL import Image

from ..media import write_video
from .drawing import draw_faces, levels, overlay
from .prepare import Prepared
from .results import SUMMARY_FIELDS, Result

VIDEO_FPS = 4


def save_crops(prepared: Prepared, folder: Path, stem: Path) -> None:
    """``folder/<stem>/<frame>_<face>.png`` for every aligned face."""
    target = folder / stem
    target.mkdir(parents=True, exist_ok=True)
    for frame in prepared.frames:
        for number, face in enumerate(frame.faces):
            Image.fromarray(face.crop).save(target / f"{frame.index:06d}_{number}.png")


def annotate(result: Result, folder: Path, stem: Path, threshold: float) -> Path:
    """The image (``<stem>.png``) or the sampled frames of a video (``<stem>.mp4``) with each face's
    box and p_fake drawn, from the frames the result kept; returns the file written."""
    drawn = [draw_faces(image, frame.faces, threshold) for image, frame in zip(result.images, result.frames)]
    target = folder / stem.with_suffix(".mp4" if result.kind == "video" else ".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    if result.kind == "video":
        write_video(drawn, target, VIDEO_FPS)
    else:
        Image.fromarray(drawn[0]).save(target)
    return target


def write_map_files(result: Result, folder: Path, stem: Path) -> tuple[str, str]:
    """``<stem>.mask.png`` (8-bit probability) and ``<stem>.overlay.png`` for an image; for a video,
    ``<stem>.mask/<frame>.png`` per sampled frame and ``<stem>.overlay.mp4``. Returns both paths."""
    base = folder / stem
    base.parent.mkdir(parents=True, exist_ok=True)
    drawn = [overlay(image, values) for image, values in zip(result.images, result.maps)]
    if result.kind == "video":
        masks = base.with_name(base.name + ".mask")
        masks.mkdir(exist_ok=True)
        for frame, values in zip(result.frames, result.maps):
            Image.fromarray(levels(values)).save(masks / f"{frame.index:06d}.png")
        overlaid = base.with_name(base.name + ".overlay.mp4")
        write_video(drawn, overlaid, VIDEO_FPS)
        return str(masks), str(overlaid)
    mask, overlaid = base.with_name(base.name + ".mask.png"), base.with_name(base.name + ".overlay.png")
    Image.fromarray(levels(result.maps[0])).save(mask)
    Image.fromarray(drawn[0]).save(overlaid)
    return str(mask), str(overlaid)


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
