"""One manifest format at the core (a list of ``Sample``), adapters for the layouts in use at the edge.

- the dataset layout ``<root>/<dataset>/<source>/<video>/<frame>`` (DeepfakeBench, the papers' code),
  given at any depth: the root holding datasets, a dataset, a source or one video folder (dataset,
  source and video are the names of the frame's last three folders);
- list files of such paths, one a line (the authors' ``config/datasets/*.txt``);
- CSV manifests ``path,label[,dataset,source,video,mask]`` (what ``preprocess`` writes);
- DeepfakeBench's dataset JSON (``{dataset: {label: {split: {compression: {video: {label, frames}}}}}}``);
- Dolos (DeCLIP's localization data): ``<root>/fake/<generator>/{images,masks}/<split>/<image>`` and
  ``<root>/real/<split>/<image>``, masks white where the image is untouched.

A source whose name contains ``real`` is real (label 0); anything else is fake (label 1). In the
layout, a frame's manipulation mask is ``<frame>_mask.png`` beside it (as ``preprocess`` writes),
white where manipulated.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..media import IMAGE_SUFFIXES
from ..metrics import Videos

REAL, FAKE = 0, 1


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    dataset: str
    source: str
    video: str
    """Unique video id: ``<dataset>/<source>/<video>``."""
    mask: str | None = None
    """Manipulation mask of a fake; None for reals (nothing manipulated) and fakes without one."""
    mask_inverted: bool = False
    """The mask is white where the image is untouched (Dolos)."""


def label_of(source: str) -> int:
    """The one label-from-source rule: a source whose name contains ``real`` is real."""
    return REAL if "real" in source.lower() else FAKE


def _label(text: str) -> int:
    text = text.strip().lower()
    if text in ("0", "real"):
        return REAL
    if text in ("1", "fake"):
        return FAKE
    raise UsageError(f"label must be 0/1 or real/fake, not {text!r}")


def sample_from_path(path: Path, label: int | None = None) -> Sample:
    """A frame of the layout: the last four parts of its path (made absolute, so that a relative one such
    as ``000/001.png`` still has them) are dataset, source, video, frame."""
    parts = Path(os.path.abspath(path)).parts
    if len(parts) < 5:
        raise UsageError(f"{path}: expected <dataset>/<source>/<video>/<frame>")
    dataset, source, video = parts[-4:-1]
    return Sample(str(path), label_of(source) if label is None else label, dataset, source,
                  f"{dataset}/{source}/{video}")


def frame_order(path: str | Path) -> tuple:
    """Sort key of frame paths in frame order, also when numbers are not zero-padded (``2.png`` before
    ``10.png``), as in layouts written by other tools and earlier versions."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path)))


def from_layout(root: Path) -> list[Sample]:
    """Every image under ``root``, in frame order, with the ``<frame>_mask.png`` beside it when there is one.
    ``root`` is any folder of the layout: the root holding datasets, a dataset, a source or one video."""
    frames = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "_mask" not in p.stem),
                    key=frame_order)
    samples = []
    for frame in frames:
        mask = frame.with_name(f"{frame.stem}_mask.png")
        sample = sample_from_path(frame)
        samples.append(replace(sample, mask=str(mask)) if mask.is_file() else sample)
    return samples


def is_dolos(root: Path) -> bool:
    """A Dolos dataset root (``fake/<generator>/images``) or one generator's folder (``images`` + ``masks``)."""
    return any((root / "fake").glob("*/images")) or ((root / "images").is_dir() and (root / "masks").is_dir())


def from_dolos(root: Path, split: str | None = None) -> list[Sample]:
    """A Dolos root (every generator and the reals) or one generator's folder (its fakes, as DeCLIP
    trains); ``split`` (train, valid, test) keeps one split. Each image is its own "video", named by its path
    (less the suffix) under the folder read: the split's (``0001``), or, with no ``split``, ``images`` or
    ``real`` (``train/0001``), so that images of one name in two splits stay two videos."""
    generators = [root] if (root / "images").is_dir() else sorted(p.parent for p in (root / "fake").glob("*/images"))
    dataset = (root.parent.parent if generators == [root] else root).name
    samples = []
    for generator in generators:
        images = generator / "images" / split if split else generator / "images"
        for image in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = generator / "masks" / image.relative_to(generator / "images").with_suffix(".png")
            samples.append(Sample(str(image), FAKE, dataset, generator.name,
                                  f"{dataset}/{generator.name}/{_image_name(image, images)}", str(mask),
                                  mask_inverted=True))
    reals = root / "real" / split if split else root / "real"
    if generators != [root] and reals.is_dir():
        samples += [Sample(str(p), REAL, dataset, "real", f"{dataset}/real/{_image_name(p, reals)}")
                    for p in sorted(reals.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    return samples


def _image_name(image: Path, folder: Path) -> str:
    return image.relative_to(folder).with_suffix("").as_posix()


def from_list_file(path: Path) -> list[Sample]:
    """Paths one a line; relative ones are tried as given and then against the list file's folder."""
    samples = []
    for line in path.read_text().splitlines():
        if line.strip():
            frame = Path(line.strip())
            if not frame.is_absolute() and not frame.exists():
                frame = path.parent / frame
            samples.append(sample_from_path(frame))
    return samples


def from_csv(path: Path) -> list[Sample]:
    """``path,label[,dataset,source,video,mask]``; relative paths are taken against the CSV's folder."""
    samples = []
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            frame = _resolve(row["path"], path.parent)
            inferred = sample_from_path(frame) if len(frame.parts) >= 4 else None
            dataset = row.get("dataset") or (inferred.dataset if inferred else "")
            source = row.get("source") or (inferred.source if inferred else "")
            video = row.get("video") or (inferred.video.rsplit("/", 1)[-1] if inferred else frame.parent.name)
            label = _label(row["label"]) if row.get("label") else label_of(source)
            mask = str(_resolve(row["mask"], path.parent)) if row.get("mask") else None
            samples.append(Sample(str(frame), label, dataset, source, f"{dataset}/{source}/{video}", mask))
    return samples


def from_deepfakebench_json(path: Path, root: Path | None = None, split: str | None = None) -> list[Sample]:
    """DeepfakeBench's ``dataset_json/*.json``; ``split`` keeps only train, val or test."""
    data = json.loads(path.read_text())
    samples = []
    for dataset, by_label in data.items():
        for keys, video in _videos(by_label, ()):
            if split and split not in keys:
                continue
            source, name = keys[0], keys[-1]
            label = label_of(str(video.get("label", source)))
            for frame in video["frames"]:
                frame_path = _resolve(frame, root) if root else Path(frame)
                samples.append(Sample(str(frame_path), label, dataset, source, f"{dataset}/{source}/{name}"))
    return samples


def _videos(node: dict, keys: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], dict]]:
    for key, value in node.items():
        if isinstance(value, dict) and isinstance(value.get("frames"), list):
            yield (*keys, key), value
        elif isinstance(value, dict):
            yield from _videos(value, (*keys, key))


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else base / candidate


def load_manifest(spec: str | Path, split: str | None = None) -> list[Sample]:
    """A folder (Dolos, or the layout), ``.txt`` (list), ``.csv`` or ``.json`` (DeepfakeBench); ``split``
    keeps one split of Dolos and of DeepfakeBench JSON."""
    path = Path(spec)
    if path.is_dir():
        return from_dolos(path, split) if is_dolos(path) else from_layout(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest, list file or folder")
    loaders = {".txt": from_list_file, ".csv": from_csv}
    if path.suffix == ".json":
        return from_deepfakebench_json(path, split=split)
    if path.suffix not in loaders:
        raise UsageError(f"{path}: data must be a folder, .txt, .csv or .json, not {path.suffix!r}")
    return loaders[path.suffix](path)


def check_one_label_per_video(samples: list[Sample], where: str) -> None:
    """Refuses (naming the video and ``where`` the samples came from) a video whose frames are labelled
    differently: its video-level score could be compared with no label. Checked when the data are read,
    before any frame is scored."""
    if not samples:
        return
    try:
        Videos([sample.video for sample in samples], [sample.label for sample in samples])
    except ValueError as error:
        raise UsageError(f"{error} (in {where})") from None


def by_video(samples: list[Sample]) -> dict[str, list[Sample]]:
    videos: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        videos[sample.video].append(sample)
    return dict(videos)


def frames_per_video(samples: list[Sample], count: int) -> list[Sample]:
    """``count`` frames per video, evenly spaced over its sorted frames (all when it has fewer)."""
    kept = []
    for frames in by_video(samples).values():
        frames = sorted(frames, key=lambda s: frame_order(s.path))
        picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
        kept += [frames[i] for i in picks]
    return kept


def limit_files(samples: list[Sample], limit: int, seed: int = 0) -> list[Sample]:
    """Whole videos, drawn at random (seeded), until ``limit`` frames are reached; a video is never split."""
    videos = by_video(samples)
    order = np.random.default_rng(seed).permutation(sorted(videos))
    kept: list[Sample] = []
    for video in order:
        if len(kept) >= limit:
            break
        kept += videos[video]
    return kept


def split_readable(samples: list[Sample]) -> tuple[list[Sample], list[str]]:
    """Samples whose file (and mask) exist and are non-empty, and the problems found, checked once at start-up."""
    kept, problems = [], []
    for sample in samples:
        missing = [p for p in (sample.path, sample.mask) if p and not _non_empty(p)]
        if missing:
            problems += [f"{p}: missing or empty" for p in missing]
        else:
            kept.append(sample)
    return kept, problems


def _non_empty(path: str) -> bool:
    candidate = Path(path)
    return candidate.is_file() and candidate.stat().st_size > 0
