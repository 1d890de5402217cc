"""What inference writes: result rows (JSONL / CSV), aligned crops, inputs drawn with boxes and scores,
and mask and overlay files of maps."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image

from ..media import VideoWriter
from .drawing import draw_faces, levels, overlay
from .outputs import OutputNames
from .prepare import Prepared
from .results import FrameResult, Result
from .provenance import run_file
from .rows import CSV_COLUMNS

VIDEO_FPS = 4


def save_crops(prepared: Prepared, folder: Path, names: OutputNames) -> None:
    """``folder/<name>/<frame>_<face>.png`` for every aligned face of a piece."""
    target = names.file(folder, prepared.number, "")
    for frame in prepared.frames:
        for number, face in enumerate(frame.faces):
            path = names.safe(target / f"{frame.index:06d}_{number}.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(face.crop).save(path)


class InputFiles:
    """The files one input gets, written frame by frame as its pieces are scored, so that a long video is
    never held whole: the input drawn with boxes and p_fake (``<name>.png``, or ``<name>.mp4`` of the sampled
    frames; over its faces' explanations when there are), its map (``<name>.mask.png`` and ``<name>.overlay.png``;
    a video's ``<name>.mask/<frame>.png`` and ``<name>.overlay.mp4``) and its faces' explanations
    (``<name>.explain/<frame>_<face>.png``, 8-bit grey over the model's ``crop_size`` input). Each is written under
    a ``.part`` name and renamed when the input is done, or removed when it failed."""

    def __init__(self, kind: str, number: int, names: OutputNames, annotate: Path | None, maps: Path | None,
                 threshold: float, explanations: Path | None = None, crop_size: int = 224):
        video = kind == "video"
        self.threshold, self.crop_size = threshold, crop_size
        self.targets: dict[str, Path] = {}
        if annotate is not None:
            self.targets["annotated"] = names.file(annotate, number, ".mp4" if video else ".png")
        if maps is not None:
            self.targets["mask"] = names.file(maps, number, ".mask" if video else ".mask.png")
            self.targets["overlay"] = names.file(maps, number, ".overlay.mp4" if video else ".overlay.png")
        if explanations is not None:
            self.targets["explanations"] = names.file(explanations, number, ".explain")
        for target in self.targets.values():
            target.parent.mkdir(parents=True, exist_ok=True)
        self.videos = {key: VideoWriter(_part(path), VIDEO_FPS) for key, path in self.targets.items()
                       if path.suffix == ".mp4"}
        if video and "mask" in self.targets:
            _part(self.targets["mask"]).mkdir(exist_ok=True)
        if "explanations" in self.targets:
            _part(self.targets["explanations"]).mkdir(exist_ok=True)

    def add(self, frame: FrameResult, image: np.ndarray | None, values: np.ndarray | None,
            relevance: np.ndarray | None = None) -> None:
        """One scored frame: its image and, with a decoder, its map at the image's size; with explanations, its
        faces' explanations placed on the image (``relevance``) and each face's own."""
        if "annotated" in self.targets:
            drawn = image if relevance is None else overlay(image, relevance)
            self._write("annotated", draw_faces(drawn, frame.faces, self.threshold))
        if "explanations" in self.targets:
            for number, face in enumerate(frame.faces):
                if face.explanation is not None:
                    side = (self.crop_size, self.crop_size)
                    on_crop = cv2.resize(face.explanation, side, interpolation=cv2.INTER_LINEAR)
                    Image.fromarray(levels(on_crop)).save(
                        _part(self.targets["explanations"]) / _explanation_name(frame.index, number), format="PNG")
        if values is not None and "mask" in self.targets:
            mask = self.targets["mask"]
            Image.fromarray(levels(values)).save(
                _part(mask) / f"{frame.index:06d}.png" if mask.suffix == ".mask" else _part(mask), format="PNG")
            self._write("overlay", overlay(image, values))

    def explanation_file(self, index: int, number: int, explanation: np.ndarray | None) -> str | None:
        """Where face ``number`` of frame ``index`` has its explanation once the input is done (None: not
        written)."""
        if explanation is None or "explanations" not in self.targets:
            return None
        return str(self.targets["explanations"] / _explanation_name(index, number))

    def finish(self, ok: bool) -> dict[str, str]:
        """Renames the files into place (or removes them when the input failed); returns what was written."""
        for writer in self.videos.values():
            writer.close()
        written = {}
        for key, target in self.targets.items():
            part = _part(target)
            if ok and part.exists():
                if target.is_dir():
                    shutil.rmtree(target)
                part.replace(target)
                written[key] = str(target)
            elif part.is_dir():
                shutil.rmtree(part)
            else:
                part.unlink(missing_ok=True)
        return written

    def _write(self, key: str, picture: np.ndarray) -> None:
        if key in self.videos:
            self.videos[key].write(picture)
        else:
            Image.fromarray(picture).save(_part(self.targets[key]), format="PNG")


def _explanation_name(index: int, number: int) -> str:
    return f"{index:06d}_{number}.png"


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


class ResultWriter:
    """Writes rows as they come (``.jsonl`` with detail, ``.csv`` with the summary), flushed, so a
    stopped run keeps its rows. ``suffix`` (default: the path's) says which, for a file written under
    another name first, ``final`` (default: the path) being its name once complete. The run's ``header``
    (``provenance``) is a JSONL's first line, and a CSV's ``<name>.run.json`` beside it."""

    def __init__(self, path: str | Path, suffix: str | None = None, header: dict | None = None,
                 final: Path | None = None):
        self.path = Path(path)
        suffix = (suffix or self.path.suffix).lower()
        if suffix not in (".jsonl", ".csv"):
            raise ValueError(f"output must end in .jsonl or .csv, not {self.path.name!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=CSV_COLUMNS, extrasaction="ignore") \
            if suffix == ".csv" else None
        if self._csv:
            self._csv.writeheader()
        if header is not None and self._csv:
            run_file(final or self.path).write_text(json.dumps(header, indent=2) + "\n")
        elif header is not None:
            self._file.write(json.dumps(header) + "\n")

    def write(self, result: Result) -> None:
        self.write_row(result.to_dict())

    def write_row(self, row: dict) -> None:
        """A row as ``rows`` builds it (detection or localization); CSV keeps the summary's columns."""
        if self._csv:
            self._csv.writerow(row)
        else:
            self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
