"""Videos and images to the training layout ``<out>/<dataset>/<source>/<video>/<frame>.png``.

Per kept frame: the aligned crop, its five and 68 landmarks in crop coordinates (``.npy``) and,
with manipulation masks, the mask warped by the same matrix (``<frame>_mask.png``). Frame files are named
by the frame's number, zero-padded to the width of the video's last frame number (at least three
digits), so they sort in frame order.

Each video folder records what made it: ``.job.json`` (the input and the settings: face options,
sampling, mask, label) when work on it starts, then ``.done.json`` (its manifest rows) when it gave
frames, or ``.failed.json`` (the error) when it gave none. A rerun reuses a finished video only when the
input and the settings are the same; a rerun with other settings than a video was made with is refused before
anything is written (``check_settings``: one output never mixes two settings), a failed video is always tried
again, ``overwrite`` redoes everything, and frames written before a kill are kept, so a killed run continues
where it stopped. An input is never written over: folders preprocess wrote are
never read as inputs, no input may lie in an output folder, and two inputs that would share a folder
(``a.mp4`` and ``a.avi``) get distinct ones (``a``, ``a-2``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ClipForensicsError, UsageError
from ..faces.align import align_face, warp_mask
from ..faces.detection import Face, choose_faces
from ..faces.options import FaceOptions
from ..faces.search import searching
from ..media import MEDIA_SUFFIXES, VIDEO_SUFFIXES, Media, Sampler, expand_sources, kind_of, read_media
from ..words import changes, counted
from .manifest import REAL, label_of

MANIFEST_FIELDS = ("path", "label", "dataset", "source", "video", "mask")
JOB_FILE = ".job.json"
DONE_FILE = ".done.json"
FAILED_FILE = ".failed.json"
MIN_FRAME_DIGITS = 3
"""Frame numbers are padded to at least this many digits (the layout of earlier versions)."""
SHOWN_NAMES = 5
"""Files a folder holds that are neither images nor videos: how many the warning names."""

log = logging.getLogger(__name__)


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
    folder named ``videos``), ``label`` to ``real`` when the source's name contains it, else ``fake``.
    Folders searched skip the video folders preprocess wrote and the files that are neither images nor videos
    (named in a warning); inputs that would share an output folder
    get distinct ones; an output folder that would hold an input is refused (``UsageError``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out}: a file; the output is a folder (it gets <dataset>/<source>/<video>/)")
    claimed: dict[Path, str] = {}
    jobs = []
    for path in _inputs(inputs):
        own_source = source or _source_of(path)
        mask = _mask_for(path, masks)
        folder = _free_folder(out / dataset / own_source / path.stem, _identity(path), claimed)
        jobs.append(PreprocessJob(
            media=str(path),
            folder=str(folder),
            label=label or ("real" if label_of(own_source) == REAL else "fake"),
            dataset=dataset,
            source=own_source,
            mask=str(mask) if mask else None,
        ))
    _check_inputs_outside(jobs)
    return jobs


def _inputs(inputs: list[str | Path]) -> list[Path]:
    """Files as given; folders searched, without the video folders preprocess wrote (their crops are outputs),
    and without the files that are neither images nor videos (a dataset's metadata.json, its lists): one
    warning per folder names them, and they do not fail the run."""
    paths = []
    for given in inputs:
        found = expand_sources([given])
        if Path(given).is_dir():
            found = [p for p in found if not any((p.parent / name).is_file() for name in (JOB_FILE, DONE_FILE))]
            found = _media_only(Path(given), found)
        paths += found
    return paths


def _media_only(folder: Path, found: list[Path]) -> list[Path]:
    """The images and videos among the files found in ``folder`` (the folder itself when it has none: it fails
    with its own error); a warning names the others."""
    media: list[Path] = []
    others: list[Path] = []
    for path in found:
        (media if path == folder or kind_of(path) in ("image", "video") else others).append(path)
    if others:
        names = ", ".join(str(path.relative_to(folder)) for path in others[:SHOWN_NAMES])
        more = f" and {len(others) - SHOWN_NAMES} more" if len(others) > SHOWN_NAMES else ""
        log.warning("%s: %s neither image nor video, not preprocessed: %s%s", folder,
                    counted(len(others), "file"), names, more)
    return media


def _identity(path: Path) -> str:
    return os.path.abspath(path)


def _free_folder(folder: Path, media: str, claimed: dict[Path, str]) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``, ... when another input has it (in this run or on disk)."""
    candidate, number = folder, 1
    while claimed.get(candidate, _recorded_media(candidate)) not in (None, media):
        number += 1
        candidate = folder.with_name(f"{folder.name}-{number}")
    claimed[candidate] = media
    return candidate


def _recorded_media(folder: Path) -> str | None:
    for name in (JOB_FILE, DONE_FILE, FAILED_FILE):
        record = _read_json(folder / name)
        if record and record.get("media"):
            return _identity(Path(record["media"]))
    return None


def _check_inputs_outside(jobs: list[PreprocessJob]) -> None:
    folders = {Path(os.path.abspath(job.folder)) for job in jobs}
    for job in jobs:
        for path in filter(None, (job.media, job.mask)):
            inside = Path(os.path.abspath(path)).parent
            if inside in folders:
                raise UsageError(f"{path} lies in the output folder {inside}, where preprocess would write "
                                 "its frames: choose an --output outside the inputs' folders")


def _source_of(path: Path) -> str:
    parent = path.parent
    return parent.parent.name if parent.name == "videos" and parent.parent.name else parent.name


def _mask_for(path: Path, masks: Path | None) -> Path | None:
    if masks is None:
        return None
    found = sorted(p for p in masks.glob(path.stem + ".*") if p.suffix.lower() in MEDIA_SUFFIXES)
    return found[0] if found else None


def job_settings(job: PreprocessJob, options: FaceOptions, sampler: Sampler) -> dict:
    """What a video folder's content depends on besides the input: a change means redoing it."""
    return {"faces": asdict(options), "sampler": asdict(sampler), "mask": _identity(Path(job.mask)) if job.mask
            else None, "label": job.label}


def finished(job: PreprocessJob, options: FaceOptions, sampler: Sampler) -> VideoOutcome | None:
    """The outcome of an earlier run to reuse: the same input with the same settings gave frames."""
    folder = Path(job.folder)
    done, record = _read_json(folder / DONE_FILE), _read_json(folder / JOB_FILE)
    if not done or not done.get("rows") or _identity(Path(done["media"])) != _identity(Path(job.media)):
        return None
    if record is not None and record.get("settings") != job_settings(job, options, sampler):
        return None
    return VideoOutcome(**done)


def check_settings(jobs: list[PreprocessJob], options: FaceOptions, sampler: Sampler) -> None:
    """Refuses (``UsageError``) jobs whose folder holds frames of the same input made with other settings, naming
    the settings that differ, recorded -> now (a folder without frames, of a failed input, is simply redone)."""
    changed = {}
    for job in jobs:
        folder = Path(job.folder)
        record = _read_json(folder / JOB_FILE)
        if record and _identity(Path(record["media"])) == _identity(Path(job.media)) and any(folder.glob("*.png")):
            said = changes(record["settings"], job_settings(job, options, sampler))
            if said:
                changed[job.media] = said
    if changed:
        first, said = next(iter(changed.items()))
        raise UsageError(f"{Path(jobs[0].folder).parents[2]} holds the frames of {counted(len(changed), 'input')} "
                         f"made with other settings ({first}: {'; '.join(said)}): nothing was written; run with the "
                         "recorded settings, add --overwrite to redo them, or choose another --output")


def run_jobs(jobs: list[PreprocessJob], options: FaceOptions, sampler: Sampler, workers: int = 1,
             progress: bool | None = None, overwrite: bool = False) -> Iterator[VideoOutcome]:
    """Processes each job, in parallel processes, reusing finished ones unless ``overwrite``; refuses a rerun with
    other settings than the outputs it would reuse were made with (``check_settings``) unless ``overwrite``."""
    from tqdm import tqdm

    if not overwrite:
        check_settings(jobs, options, sampler)
    reused = {} if overwrite else {job: finished(job, options, sampler) for job in jobs}
    todo = [job for job in jobs if reused.get(job) is None]
    for job in jobs:
        if reused.get(job) is not None:
            yield reused[job]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="video", desc="preprocess",
               disable=not (len(jobs) > 1 if progress is None else progress))
    arguments = (todo, [options] * len(todo), [sampler] * len(todo), [overwrite] * len(todo))
    with bar:
        if workers <= 1:
            for outcome in map(process_job, *arguments):
                bar.update(1)
                yield outcome
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for outcome in pool.map(process_job, *arguments):
                bar.update(1)
                yield outcome


def _reason(message: str, media: str) -> str:
    """An error about the input without the input's path in front: the outcome is listed under its path."""
    return message.removeprefix(f"{media}: ")


def process_job(job: PreprocessJob, options: FaceOptions, sampler: Sampler, overwrite: bool = False) -> VideoOutcome:
    """Frames of one video to disk; errors become the outcome's ``error``, never an exception. Frames of an
    interrupted earlier attempt with the same input and settings are kept; anything else there is cleared."""
    folder = Path(job.folder)
    record = {"media": _identity(Path(job.media)), "settings": job_settings(job, options, sampler)}
    if overwrite or _read_json(folder / JOB_FILE) != record:
        _clear(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / JOB_FILE, record)
    try:
        media = read_media(job.media, sampler)
        masks = _mask_frames(job, sampler)
        detector = options.create_detector(landmarks68=True)
        search = searching(detector, media.kind)
        digits = max(MIN_FRAME_DIGITS, len(str(max(media.total_frames - 1, 0))))
        rows, sampled, faceless, shape = [], 0, 0, (0, 0)
        for frame in media.frames:
            row = _frame_row(job, folder, frame, masks.get(frame.index), options, search, digits)
            sampled += 1
            faceless += row is None
            rows += [row] if row else []
            shape = frame.image.shape[:2]
        outcome = VideoOutcome(job.media, rows, sampled=sampled, faceless=faceless)
        if not rows:
            outcome.error = f"no face found in any of the {sampled} sampled frames ({options.searched(*shape)})"
    except ClipForensicsError as error:
        outcome = VideoOutcome(job.media, [], error=_reason(str(error), job.media))
    keep, drop = (FAILED_FILE, DONE_FILE) if outcome.error else (DONE_FILE, FAILED_FILE)
    (folder / drop).unlink(missing_ok=True)
    _write_json(folder / keep, asdict(outcome))
    return outcome


def _clear(folder: Path) -> None:
    """The files of an earlier attempt (another input, other settings, or --overwrite); the folder is
    preprocess's own: no input lies in it (``plan_jobs`` checks)."""
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() or path.is_symlink():
                path.unlink()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    _atomic_write(path, lambda partial: partial.write_text(json.dumps(data)))


def _mask_frames(job: PreprocessJob, sampler: Sampler) -> dict[int, np.ndarray]:
    if job.mask is None:
        return {}
    media: Media = read_media(job.mask, sampler)
    return {frame.index: frame.image.max(axis=2) for frame in media.frames}


def _frame_row(job: PreprocessJob, folder: Path, frame, mask: np.ndarray | None, options: FaceOptions,
               detector, digits: int) -> dict | None:
    name = f"{frame.index:0{digits}d}"
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


def recorded_outcomes(out: Path) -> list[VideoOutcome]:
    """Every video preprocessed into ``out`` so far: those that gave frames and those that failed."""
    records = (_read_json(path) for name in (DONE_FILE, FAILED_FILE) for path in sorted(out.rglob(name)))
    return [VideoOutcome(**record) for record in records if record]


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
        "failed": {o.media: o.error for o in outcomes if o.error or not o.rows},
    }
