"""Scoring a localizer's maps against manipulation masks, as DeCLIP reports them.

Each image is scored at the map's 256 x 256: the mask goes through the image's geometry to that size
and counts as manipulated above 0.5. Per image: IoU and F1 of the map thresholded at 0.5, F1 at the
image's best threshold, pixel AP; these are averaged over the fakes that have a mask (DeCLIP's
localization numbers are means over fake images). The image score (mean of the sigmoid map) is also
a detector's p_fake: image-level AUROC, AP, EER and accuracy come from it exactly as ``evaluate``'s
frame tables do, each fake source against the reals of its dataset (a model with a detection head
is ranked by its p_fake instead).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from ..data.dataset import read_mask
from ..data.manifest import Sample
from .detection import Perturbation, Prediction, in_chunks, metric_table, read_frame
from ..metrics import PIXEL_METRICS, pixel_scores
from .reports import write_localization_reports
from ..transforms import Preprocessing, preprocess, resize_mask

MAP_SIZE = 256
MAP_PREDICTION_FIELDS = ("path", "dataset", "source", "label", "score", *PIXEL_METRICS, "error")


class MapModel(Protocol):
    """What evaluation needs of a model that localizes (``api.Localizer``, or a ``Detector`` with a decoder)."""

    batch_size: int
    provenance: dict

    @property
    def preprocessing(self) -> Preprocessing: ...

    def forward_batch(self, pixels: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]: ...


ImageAndTruth = tuple[np.ndarray, np.ndarray | None]
Example = tuple[str, np.ndarray, np.ndarray, np.ndarray]
"""A fake's path, its image, true mask and probability map (all at the map's size), for the report."""


@dataclass(frozen=True)
class MapPrediction:
    """One image: its score and, for a fake with a mask, the pixel metrics (NaN otherwise)."""

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

    @property
    def masked(self) -> bool:
        return not math.isnan(self.iou)


@dataclass
class LocalizationEvaluation:
    """Per-image predictions in manifest order and the table they make."""

    predictions: list[MapPrediction]
    model: dict = field(default_factory=dict)
    perturbation: str | None = None
    examples: list[Example] = field(default_factory=list)
    rows: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = localization_table(self.predictions)

    @property
    def failed(self) -> list[MapPrediction]:
        return [p for p in self.predictions if p.error is not None]

    def to_dict(self, name: str) -> dict:
        failed = len(self.failed)
        counts = {"images": len(self.predictions), "scored": len(self.predictions) - failed, "failed": failed,
                  "masked": sum(p.masked for p in self.predictions)}
        return {"name": name, "task": "localization", "model": self.model, "perturbation": self.perturbation,
                "counts": counts, "table": [_json_ready(row) for row in self.rows]}


def evaluate_localization(model: MapModel, samples: Sequence[Sample], perturb: Perturbation | None = None,
                          progress: bool | None = None, examples: int = 6) -> LocalizationEvaluation:
    """Maps for every image of ``samples`` scored against their masks; the first ``examples`` masked
    fakes are kept for the report."""
    if not samples:
        raise ValueError("no images to evaluate")
    kept: list[Example] = []
    predictions = in_chunks(samples, model.batch_size, lambda part: _predict(model, part, perturb, kept, examples),
                            progress, "localize", "image")
    return LocalizationEvaluation(predictions, dict(model.provenance), str(perturb) if perturb else None, kept)


def _predict(model: MapModel, samples: Sequence[Sample], perturb: Perturbation | None, kept: list[Example],
             examples: int) -> list[MapPrediction]:
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        loaded = list(pool.map(lambda sample: _read(sample, model.preprocessing, perturb), samples))
    readable = [item for item in loaded if not isinstance(item, str)]
    scores, maps = model.forward_batch(preprocess([image for image, _ in readable], model.preprocessing), True) \
        if readable else (torch.empty(0), torch.empty(0))
    outputs = zip(scores.tolist(), maps.numpy())
    predictions = []
    for sample, item in zip(samples, loaded):
        if isinstance(item, str):
            predictions.append(MapPrediction(sample.path, sample.dataset, sample.source, sample.label, None,
                                             error=item))
            continue
        (image, truth), (score, probabilities) = item, next(outputs)
        pixel = pixel_scores(probabilities, truth) if truth is not None else {}
        if truth is not None and len(kept) < examples:
            shown = np.asarray(Image.fromarray(image).resize(truth.shape[::-1], Image.Resampling.BILINEAR)) / 255
            kept.append((sample.path, shown, truth.astype(np.float32), probabilities))
        predictions.append(MapPrediction(sample.path, sample.dataset, sample.source, sample.label, score,
                                         **pixel))
    return predictions


def _read(sample: Sample, prep: Preprocessing, perturb: Perturbation | None) -> ImageAndTruth | str:
    """The (perturbed) image and, for a fake with a mask, the boolean truth at the map's size; or why not."""
    image = read_frame(sample.path, perturb)
    if isinstance(image, str):
        return image
    try:
        mask = read_mask(sample, image.shape[:2])
    except OSError as error:
        return str(error)
    return image, resize_mask(mask, prep, MAP_SIZE) > 0.5 if mask is not None else None


def localization_table(predictions: Sequence[MapPrediction]) -> list[dict]:
    """Rows for all images, each dataset and each source: image-level metrics from the score, and the
    pixel metrics averaged over the group's masked fakes."""
    scored = [p for p in predictions if p.score is not None]
    as_frames = [Prediction(p.path, p.dataset, p.source, p.path, p.label, p.score) for p in scored]
    rows = []
    for row in metric_table(as_frames):
        members = [p for p in scored if p.masked and row.dataset in (None, p.dataset)
                   and row.source in (None, p.source)]
        pixel = {key: float(np.nanmean([getattr(p, key) for p in members])) if members else math.nan
                 for key in PIXEL_METRICS}
        rows.append({**row.to_dict(), "masked": len(members), **pixel})
    return rows


def _json_ready(row: dict) -> dict:
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}


def write_localization(evaluation: LocalizationEvaluation, out_dir: str | Path, name: str) -> list[Path]:
    """``predictions.csv`` (one row per image), ``metrics.json`` and the reports with example maps."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "predictions.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=MAP_PREDICTION_FIELDS)
        writer.writeheader()
        for prediction in evaluation.predictions:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v
                             for k, v in asdict(prediction).items()})
    data = evaluation.to_dict(name)
    (out / "metrics.json").write_text(json.dumps(data, indent=2) + "\n")
    reports = write_localization_reports(data, evaluation.examples, evaluation.failed, out)
    return [out / "predictions.csv", out / "metrics.json", *reports]
