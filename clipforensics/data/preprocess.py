"""Videos and images to the training layout ``<out>/<dataset>/<source>/<video>/<frame>.png``.

Per kept frame: the aligned crop, its five and 68 landmarks in crop coordinates (``.npy``) and,
with manipulation masks, the mask warped by the same matrix (``<frame>_mask.png``). Resumable: a
finished video leaves ``.done.json`` (its manifest rows), frames are written atomically and
frames already on disk are not redone, so a killed run continues where it stopped.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ClipForensicsError
from ..faces.align import align_face, warp_mask
from ..faces.detection import Face, choose_faces
from ..faces.options import FaceOptions
from ..media import MEDIA_SUFFIXES, VIDEO_SUFFIXES, Media, Sampler, expand_sources, read_media
from .manifest import REAL, label_of

MANIFEST_FIELDS = ("path", "label", "dataset", "source", "video", "mask")
DONE_FILE = ".done.json"


@dataclass(frozen=True)
class PreprocessJob:
    """One video (or image) to turn into frames of the layout."""

    media: str
    folder: str
    """``<out>/<dataset>/<source>/<video>``"""
    label: str
    dataset: str
    source: str
    mask: str | None = None


@dataclass
class VideoOutcome:
    media: str
    rows: list[dict]
    sampled: int = 0
    faceless: int = 0
    error: str | None = None


def plan_jobs(inputs: list[str | Path], out: Path, dataset: str, source: str | None = None,
              label: str | None = None, masks: Path | None = None) -> list[PreprocessJob]:
    """One job per video or image; ``source`` defaults to the folder holding the media (skipping a
    folder named ``videos``), ``label`` to ``real`` when the source's name contains it, else ``fake``."""
    jobs = []
    for path in expand_sources(inputs, MEDIA_SUFFIXES):
        own_source = source or _source_of(path)
        mask = _mask_for(path, masks)
        jobs.append(PreprocessJob(
            media=str(path),
            folder=str(out / dataset / own_source / path.stem),
            label=label or ("real" if label_of(own_source) == REAL else "fake"),
            dataset=dataset,
            source=own_source,
            mask=str(mask) if mask else None,
        ))
    return jobs


def _source_of(path: Path) -> str:
    parent = path.parent
    return parent.parent.name if parent.name == "videos" and parent.parent.name else parent.name


def _mask_for(path: Path, masks: Path | None) -> Path | None:
    if masks is None:
        return None
    found = sorted(p for p in masks.glob(path.stem + ".*") if p.suffix.lower() in MEDIA_SUFFIXES)
    return found[0] if found else None


def run_jobs(jobs: list[PreprocessJob], options: FaceOptions, sampler: Sampler, workers: int = 1,
             progress: bool | None = None) -> Iterator[VideoOutcome]:
    """Processes each job once (finished ones are read back from ``.done.json``), in parallel processes."""
    from tqdm import tqdm

    todo = [job for job in jobs if not (Path(job.folder) / DONE_FILE).is_file()]
    for job in jobs:
        if job not in todo:
            yield VideoOutcome(**json.loads((Path(job.folder) / DONE_FILE).read_text()))
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="video", desc="preprocess",
               disable=not (len(jobs) > 1 if progress is None else progress))
    with bar:
        if workers <= 1:
            outcomes = (process_job(job, options, sampler) for job in todo)
            for outcome in outcomes:
                bar.update(1)
                yield outcome
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for outcome in pool.map(process_job, todo, [options] * len(todo), [sampler] * len(todo)):
                bar.update(1)
                yield outcome


def process_job(job: PreprocessJob, options: FaceOptions, sampler: Sampler) -> VideoOutcome:
    """Frames of one video to disk; errors become the outcome's ``error``, never an exception."""
    folder = Path(job.folder)
    try:
        media = read_media(job.media, sampler)
        masks = _mask_frames(job, sampler)
        detector = options.create_detector()
        rows, faceless = [], 0
        for frame in media.frames:
            row = _frame_row(job, folder, frame, masks.get(frame.index), options, detector)
            faceless += row is None
            rows += [row] if row else []
        outcome = VideoOutcome(job.media, rows, sampled=len(media.frames), faceless=faceless)
        if not rows:
            outcome.error = f"no face found in any of the {len(media.frames)} sampled frames"
    except ClipForensicsError as error:
        outcome = VideoOutcome(job.media, [], error=str(error))
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / DONE_FILE, lambda path: path.write_text(json.dumps(asdict(outcome))))
    return outcome


def _mask_frames(job: PreprocessJob, sampler: Sampler) -> dict[int, np.ndarray]:
    if job.mask is None:
        return {}
    media: Media = read_media(job.mask, sampler)
    return {frame.index: frame.image.max(axis=2) for frame in media.frames}


def _frame_row(job: PreprocessJob, folder: Path, frame, mask: np.ndarray | None, options: FaceOptions,
               detector) -> dict | None:
    name = f"{frame.index:03d}"
    crop_path = folder / f"{name}.png"
    mask_path = folder / f"{name}_mask.png" if mask is not None else None
    if not crop_path.is_file():
        faces = choose_faces(detector.detect(frame.image), "mask" if mask is not None else "largest", mask)
        if not faces:
            return None
        _write_face(frame.image, faces[0], mask, folder, name, options)
    relative = Path(job.dataset, job.source, folder.name)
    return {"path": (relative / crop_path.name).as_posix(), "label": job.label, "dataset": job.dataset,
            "source": job.source, "video": folder.name,
            "mask": (relative / mask_path.name).as_posix() if mask_path else ""}


def _write_face(image: np.ndarray, face: Face, mask: np.ndarray | None, folder: Path, name: str,
                options: FaceOptions) -> None:
    aligned = align_face(image, face.landmarks, options.recipe, options.crop_size, options.scale)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}_lm5.npy", aligned.to_crop(face.landmarks).astype(np.float32))
    if face.landmarks68 is not None:
        np.save(folder / f"{name}_lm68.npy", aligned.to_crop(face.landmarks68).astype(np.float32))
    if mask is not None:
        warped = warp_mask(mask, aligned)
        _atomic_write(folder / f"{name}_mask.png", lambda path: Image.fromarray(warped).save(path, format="PNG"))
    # the crop goes last: its presence means the frame is complete
    _atomic_write(folder / f"{name}.png", lambda path: Image.fromarray(aligned.crop).save(path, format="PNG"))


def _atomic_write(path: Path, write) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def write_manifest(outcomes: list[VideoOutcome], path: Path) -> dict:
    """The manifest CSV at the output root (paths relative to it, sorted); returns what was kept and missed."""
    rows = sorted((row for outcome in outcomes for row in outcome.rows), key=lambda row: row["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return {
        "videos": sum(1 for o in outcomes if Path(o.media).suffix.lower() in VIDEO_SUFFIXES),
        "inputs": len(outcomes),
        "frames_kept": len(rows),
        "frames_without_faces": sum(o.faceless for o in outcomes),
        "failed": {o.media: o.error for o in outcomes if o.error},
    }
