"""A model over a manifest: one row per sample, for detection and localization alike.

Frames are decoded (and perturbed) in a thread pool, a chunk at a time so that memory stays bounded; for
localization each fake's mask goes through the image's geometry to the model's map size and counts as
manipulated above 0.5. The model scores preprocessed batches (``forward_batch``): p_fake per image (from
the head, or the map's mean for a model without one) and, for localization, probability maps scored
against the masks (IoU and F1 at 0.5, best F1, pixel AP). Every sample keeps its row, in order; one that
cannot be read keeps it with the error and no score.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from PIL import Image

from ..data.manifest import Sample, check_one_label_per_video, load_manifest
from ..errors import MediaError, UsageError
from ..media import load_image
from ..metrics import PIXEL_METRICS, pixel_scores
from ..progress import progress_bar
from .perturbations import Perturbation

if TYPE_CHECKING:
    import torch

    from ..models.model import ModelConfig
    from ..transforms import Preprocessing

TASKS = ("detection", "localization")
EXAMPLES = 6
"""Masked fakes per ``predict_samples`` call that carry their maps for the report."""


class Model(Protocol):
    """What evaluation needs of a loaded model (``clipforensics.load``)."""

    batch_size: int
    provenance: dict

    @property
    def config(self) -> ModelConfig: ...

    @property
    def preprocessing(self) -> Preprocessing: ...

    def forward_batch(self, pixels: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    @property
    def has_head(self) -> bool: ...

    def explain_batch(self, pixels: torch.Tensor,
                      method: str = "rollout") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class Prediction:
    """A frame of a detection run; ``p_fake`` is None and ``error`` says why when it was not scored."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("path", "dataset", "source", "video", "label", "p_fake", "error")

    path: str
    dataset: str
    source: str
    video: str
    label: int
    p_fake: float | None
    error: str | None = None


@dataclass(frozen=True)
class Example:
    """A masked fake as the model saw it, all at the map's size: the image (uint8 [h, w, 3], through the
    model's geometry), the true mask (bool [h, w]) and the predicted probabilities (float32 [h, w])."""

    image: np.ndarray
    truth: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class MapPrediction:
    """An image of a localization run: its score and, for a fake with a mask, the pixel metrics (NaN
    otherwise). ``example``: the maps of the first few masked fakes of each ``predict_samples`` call, for
    the report (not written to ``predictions.csv``)."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("path", "dataset", "source", "label", "score", *PIXEL_METRICS, "error")

    path: str
    dataset: str
    source: str
    label: int
    score: float | None
    iou: float = math.nan
    f1: float = math.nan
    best_f1: float = math.nan
    pixel_ap: float = math.nan
    error: str | None = None
    example: Example | None = field(default=None, compare=False, repr=False)

    @property
    def masked(self) -> bool:
        return not math.isnan(self.iou)


Row = Prediction | MapPrediction
ROWS: dict[str, type[Prediction] | type[MapPrediction]] = {"detection": Prediction, "localization": MapPrediction}


@dataclass(frozen=True)
class _Frame:
    image: np.ndarray
    """Decoded and perturbed, uint8 RGB [H, W, 3]."""
    truth: np.ndarray | None = None
    """Localization: the fake's mask at the map's size (bool), None for a real or a fake without one."""


def check_task(task: str) -> None:
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}, not {task!r}")


def load_samples(specs: Sequence[str | Path], split: str | None = None) -> list[Sample]:
    """The frames of every folder, list file or manifest in ``specs``, in order (``split``: see
    ``load_manifest``); the frames of one video must share a label (checked here, before any is scored)."""
    samples: list[Sample] = []
    for spec in specs:
        try:
            found = load_manifest(spec, split)
        except FileNotFoundError as error:
            raise UsageError(str(error)) from None
        if not found:
            raise UsageError(f"{spec}: no frames found (expected <dataset>/<source>/<video>/<frame>.png)")
        samples += found
    check_one_label_per_video(samples, ", ".join(map(str, specs)))
    return samples


def predict_samples(
    predictor: Model,
    samples: Sequence[Sample],
    task: str = "detection",
    perturb: Perturbation | None = None,
    progress: bool | None = None,
) -> list[Prediction] | list[MapPrediction]:
    """One row per sample, in order: a ``Prediction`` (detection) or a ``MapPrediction`` (localization,
    which needs a model with a decoder). ``perturb`` degrades each decoded frame first; ``progress``: a
    progress bar (None: for more than a few samples). The Ray engine calls this on each replica's share."""
    check_task(task)
    localize = task == "localization"
    if localize:
        predictor.config.require_decoder("localization")
    read = _reader(predictor.preprocessing, perturb, predictor.config.map_size if localize else None)
    chunk = max(8 * predictor.batch_size, 64)
    rows: list = []
    examples = EXAMPLES
    with (ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool,
          progress_bar(len(samples), progress, "evaluate", "image" if localize else "frame") as bar):
        for start in range(0, len(samples), chunk):
            part = samples[start : start + chunk]
            frames = list(pool.map(read, part))
            scores, maps = _forward(predictor, [frame.image for frame in frames if isinstance(frame, _Frame)],
                                    localize)
            if localize:
                rows += _map_rows(part, frames, scores, maps, predictor.preprocessing, examples, pool)
                examples -= sum(row.example is not None for row in rows[-len(part) :])
            else:
                rows += _detection_rows(part, frames, scores)
            bar.update(len(part))
    return rows


def _reader(prep: Preprocessing, perturb: Perturbation | None,
            map_size: int | None) -> Callable[[Sample], _Frame | str]:
    """Reads a sample's frame (perturbed) and, with a ``map_size``, its mask; or says why it cannot."""
    from ..data.dataset import read_mask
    from ..transforms import resize_mask

    def read(sample: Sample) -> _Frame | str:
        try:
            image = np.asarray(load_image(sample.path))
            image = perturb(image) if perturb else image
            mask = read_mask(sample, image.shape[:2]) if map_size is not None else None
        except (MediaError, OSError) as error:
            return str(error)
        return _Frame(image, resize_mask(mask, prep, map_size) > 0.5 if mask is not None else None)

    return read


def _forward(predictor: Model, images: list[np.ndarray], maps: bool) -> tuple[list[float], list[np.ndarray | None]]:
    """p_fake per image and, with ``maps``, its probability map, ``batch_size`` images per forward."""
    from ..transforms import preprocess

    scores: list[float] = []
    probabilities: list[np.ndarray | None] = []
    for start in range(0, len(images), predictor.batch_size):
        pixels = preprocess(images[start : start + predictor.batch_size], predictor.preprocessing)
        p_fake, batch_maps = predictor.forward_batch(pixels, maps)
        scores += p_fake.tolist()
        probabilities += list(batch_maps.numpy()) if batch_maps is not None else [None] * len(p_fake)
    return scores, probabilities


def _detection_rows(samples: Sequence[Sample], frames: list[_Frame | str], scores: list[float]) -> list[Prediction]:
    remaining = iter(scores)
    return [Prediction(sample.path, sample.dataset, sample.source, sample.video, sample.label,
                       None if isinstance(frame, str) else next(remaining), frame if isinstance(frame, str) else None)
            for sample, frame in zip(samples, frames)]


def _map_rows(samples: Sequence[Sample], frames: list[_Frame | str], scores: list[float],
              maps: list[np.ndarray | None], prep: Preprocessing, examples: int,
              pool: ThreadPoolExecutor) -> list[MapPrediction]:
    """Rows with the pixel metrics of each masked fake (scored in ``pool``), the first ``examples`` masked
    fakes carrying their maps."""
    readable = [index for index, frame in enumerate(frames) if isinstance(frame, _Frame)]
    outputs = dict(zip(readable, zip(scores, maps)))
    masked = [index for index in readable if frames[index].truth is not None]
    pixel = dict(zip(masked, pool.map(lambda index: pixel_scores(outputs[index][1], frames[index].truth), masked)))
    rows = []
    for index, (sample, frame) in enumerate(zip(samples, frames)):
        if isinstance(frame, str):
            rows.append(MapPrediction(sample.path, sample.dataset, sample.source, sample.label, None, error=frame))
            continue
        score, probabilities = outputs[index]
        example = None
        if index in pixel and examples > 0:
            example = _example(frame, probabilities, prep)
            examples -= 1
        rows.append(MapPrediction(sample.path, sample.dataset, sample.source, sample.label, score,
                                  **pixel.get(index, {}), example=example))
    return rows


def _example(frame: _Frame, probabilities: np.ndarray, prep: Preprocessing) -> Example:
    """The frame through the model's geometry at the map's size, beside its mask and map."""
    from ..transforms import resize_and_crop

    geometry = replace(prep, size=probabilities.shape[-1], interpolation="bilinear")
    shown = resize_and_crop(Image.fromarray(frame.image), geometry)  # float 0-255 for a float-resizing family
    return Example(np.clip(np.rint(shown), 0, 255).astype(np.uint8), frame.truth, probabilities)
