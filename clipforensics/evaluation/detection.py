"""Run a detector over a manifest of aligned face crops and score it as the papers do.

Every frame keeps a row (path, dataset, source, video, label, p_fake, error) in manifest order; a frame
that cannot be read keeps its row with the error and stays out of the metrics. Metrics (AUROC, AP, EER,
accuracy and balanced accuracy at 0.5) come at frame level and at video level (a video is a frame's
parent folder, scored by the mean of its frames' p_fake), overall, per dataset and per source. A fake
source is scored against the real sources of its dataset (Celeb-synthesis against Celeb-real and
YouTube-real); a real source alone has one class, so its ranking metrics are NaN and its accuracy is the
share of it called real.

``Perturbation`` degrades each decoded frame before the model's preprocessing, as GenD's robustness
study does (JPEG quality, Gaussian blur, downscaling).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image

from ..data.augment import gaussian_blur, jpeg
from ..data.manifest import REAL, Sample, load_manifest
from ..errors import MediaError
from ..media import load_image
from ..metrics import aggregate_videos, detection_metrics, video_of
from .reports import write_reports
from ..inference.results import Result

if TYPE_CHECKING:
    from ..inference.predictor import Detector

T = TypeVar("T")
R = TypeVar("R")
PREDICTION_FIELDS = ("path", "dataset", "source", "video", "label", "p_fake", "error")
PERTURBATION_HELP = "jpeg:Q (quality 1-100), blur:K,S (odd kernel K, sigma S > 0) or resize:P (percent, 0 < P <= 100)"


@dataclass(frozen=True)
class Perturbation:
    """A degradation of the decoded image (uint8 RGB [H, W, 3]) before preprocessing.

    ``jpeg:Q``: JPEG re-encoding at quality Q (PIL, 4:2:0). ``blur:K,S``: Gaussian blur, K x K kernel,
    sigma S, reflected border (torchvision's kernel, as in training). ``resize:P``: downscaled to P
    percent of each side and back to the original size, PIL bilinear both ways.
    """

    kind: str
    values: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> Perturbation:
        kind, _, arguments = spec.partition(":")
        try:
            values = tuple(float(v) for v in arguments.split(","))
        except ValueError:
            raise ValueError(f"perturbation must be {PERTURBATION_HELP}, not {spec!r}") from None
        perturbation = cls(kind, values)
        if not perturbation._valid():
            raise ValueError(f"perturbation must be {PERTURBATION_HELP}, not {spec!r}")
        return perturbation

    def _valid(self) -> bool:
        if self.kind == "jpeg":
            return len(self.values) == 1 and self.values[0].is_integer() and 1 <= self.values[0] <= 100
        if self.kind == "blur":
            kernel, sigma = self.values if len(self.values) == 2 else (0.0, 0.0)
            return kernel.is_integer() and kernel >= 1 and kernel % 2 == 1 and sigma > 0
        if self.kind == "resize":
            return len(self.values) == 1 and 0 < self.values[0] <= 100
        return False

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{v:g}' for v in self.values)}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.kind == "jpeg":
            return jpeg(image, int(self.values[0]))
        if self.kind == "blur":
            return gaussian_blur(image, int(self.values[0]), self.values[1])
        height, width = image.shape[:2]
        small = (max(1, round(width * self.values[0] / 100)), max(1, round(height * self.values[0] / 100)))
        resized = Image.fromarray(image).resize(small, Image.Resampling.BILINEAR)
        return np.asarray(resized.resize((width, height), Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class Prediction:
    """One frame of the manifest; ``p_fake`` is None and ``error`` says why when it was not scored."""

    path: str
    dataset: str
    source: str
    video: str
    label: int
    p_fake: float | None
    error: str | None = None


@dataclass(frozen=True)
class VideoScore:
    """A video (its frames' parent folder) scored by the mean p_fake of its scored frames."""

    video: str
    dataset: str
    source: str
    label: int
    p_fake: float
    frames: int


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one group: all (``dataset`` None), a dataset (``source`` None) or a source, the
    latter with the real sources it is scored ``against``. ``real`` and ``fake`` count what was scored."""

    dataset: str | None
    source: str | None
    against: tuple[str, ...]
    real: int
    fake: int
    metrics: dict[str, float]

    def to_dict(self) -> dict:
        """JSON-ready: NaN (undefined metric) becomes None."""
        values = {k: None if math.isnan(v) else v for k, v in self.metrics.items()}
        return {"dataset": self.dataset, "source": self.source, "against": list(self.against),
                "real": self.real, "fake": self.fake, **values}


@dataclass
class Evaluation:
    """Per-frame predictions in manifest order, the videos they make, and the metric tables."""

    predictions: list[Prediction]
    model: dict = field(default_factory=dict)
    perturbation: str | None = None
    videos: list[VideoScore] = field(init=False)
    tables: dict[str, list[MetricRow]] = field(init=False)

    def __post_init__(self) -> None:
        self.videos = video_scores(self.predictions)
        self.tables = {level: metric_table(self.scored(level)) for level in ("frame", "video")}

    @property
    def failed(self) -> list[Prediction]:
        return [p for p in self.predictions if p.error is not None]

    def scored(self, level: str) -> list[Prediction] | list[VideoScore]:
        """What the ``level`` ("frame" or "video") table scores: scored frames, or videos."""
        if level not in ("frame", "video"):
            raise ValueError(f"level must be 'frame' or 'video', not {level!r}")
        return self.videos if level == "video" else [p for p in self.predictions if p.p_fake is not None]

    def counts(self) -> dict[str, int]:
        failed = len(self.failed)
        return {"frames": len(self.predictions), "scored": len(self.predictions) - failed, "failed": failed,
                "videos": len(self.videos)}

    def to_dict(self, name: str) -> dict:
        """What ``metrics.json`` holds."""
        return {"name": name, "model": self.model, "perturbation": self.perturbation, "counts": self.counts(),
                "tables": {level: [row.to_dict() for row in rows] for level, rows in self.tables.items()}}


def load_samples(specs: Sequence[str | Path], split: str | None = None) -> list[Sample]:
    """The frames of every folder, list file or manifest in ``specs``, in order (``split``: see
    ``load_manifest``)."""
    samples: list[Sample] = []
    for spec in specs:
        try:
            found = load_manifest(spec, split)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        if not found:
            raise ValueError(f"{spec}: no frames found (expected <dataset>/<source>/<video>/<frame>.png)")
        samples += found
    return samples


def evaluate(
    detector: Detector, samples: Sequence[Sample], perturb: Perturbation | None = None, progress: bool | None = None
) -> Evaluation:
    """Scores every frame of ``samples`` (aligned face crops) with ``detector``, after ``perturb`` when
    given. ``progress``: a progress bar (None: when there are over 8 frames)."""
    if not samples:
        raise ValueError("no frames to evaluate")
    return Evaluation(predict_samples(detector, samples, perturb, progress), dict(detector.provenance),
                      str(perturb) if perturb else None)


def predict_samples(
    detector: Detector, samples: Sequence[Sample], perturb: Perturbation | None = None, progress: bool | None = None
) -> list[Prediction]:
    """One ``Prediction`` per sample, in order (the per-frame half of ``evaluate``, which a sharded run
    calls on each rank's share)."""
    chunk = max(8 * detector.batch_size, 64)
    return in_chunks(samples, chunk, lambda part: _predict(detector, part, perturb), progress, "evaluate", "frame")


def in_chunks(items: Sequence[T], size: int, work: Callable[[Sequence[T]], list[R]], progress: bool | None,
              desc: str, unit: str) -> list[R]:
    """``work`` over ``items`` ``size`` at a time, results joined in order, with a progress bar
    (``progress`` None: when there are over 8 items)."""
    from tqdm import tqdm

    results: list[R] = []
    show = len(items) > 8 if progress is None else progress
    with tqdm(total=len(items), disable=not show, unit=unit, desc=desc, leave=False) as bar:
        for start in range(0, len(items), size):
            part = items[start : start + size]
            results += work(part)
            bar.update(len(part))
    return results


def _predict(detector: Detector, samples: Sequence[Sample], perturb: Callable | None) -> list[Prediction]:
    """Frames are decoded here (and perturbed) so that every manifest row maps to one model input."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        images = list(pool.map(lambda sample: read_frame(sample.path, perturb), samples))
    readable = [image for image in images if not isinstance(image, str)]
    results = iter(detector.predict(readable, faces="none", progress=False) if readable else [])
    predictions = []
    for sample, image in zip(samples, images):
        p_fake, error = (None, image) if isinstance(image, str) else _score(next(results))
        predictions.append(Prediction(sample.path, sample.dataset, sample.source, sample.video, sample.label,
                                      p_fake, error))
    return predictions


def _score(result: Result) -> tuple[float | None, str | None]:
    if result.ok and result.p_fake is not None:
        return result.p_fake, None
    return None, result.error or "the model gave no score"


def read_frame(path: str, perturb: Callable | None) -> np.ndarray | str:
    """The decoded (and perturbed) frame, or the reason it cannot be read."""
    try:
        image = np.asarray(load_image(path))
    except MediaError as error:
        return str(error)
    return perturb(image) if perturb else image


def video_scores(predictions: Sequence[Prediction]) -> list[VideoScore]:
    """Scored frames grouped by parent folder (``metrics.aggregate_videos``), in order of first appearance."""
    scored = [p for p in predictions if p.p_fake is not None]
    if not scored:
        return []
    ids, labels, scores = aggregate_videos([p.path for p in scored], [p.label for p in scored],
                                           [p.p_fake for p in scored])
    first: dict[str, Prediction] = {}
    for prediction in scored:
        first.setdefault(video_of(prediction.path), prediction)
    frames = Counter(video_of(p.path) for p in scored)
    return [VideoScore(video, first[video].dataset, first[video].source, int(label), float(score), frames[video])
            for video, label, score in zip(ids, labels, scores)]


def metric_table(items: Sequence[Prediction] | Sequence[VideoScore]) -> list[MetricRow]:
    """Rows for all items, then per dataset: the dataset, then each of its sources (in order of appearance)."""
    if not items:
        return []
    datasets = np.array([item.dataset for item in items], dtype=object)
    sources = np.array([item.source for item in items], dtype=object)
    labels = np.array([item.label for item in items])
    scores = np.array([item.p_fake for item in items], dtype=np.float64)

    def row(dataset: str | None, source: str | None, members: np.ndarray, against: tuple[str, ...] = ()):
        fake = int(labels[members].sum())
        return MetricRow(dataset, source, against, int(members.sum()) - fake, fake,
                         detection_metrics(labels[members], scores[members]))

    rows = [row(None, None, np.ones(len(items), dtype=bool))]
    for dataset in dict.fromkeys(datasets):
        in_dataset = datasets == dataset
        reals = in_dataset & (labels == REAL)
        rows.append(row(dataset, None, in_dataset))
        for source in dict.fromkeys(sources[in_dataset]):
            own = in_dataset & (sources == source)
            if (labels[own] == REAL).any():
                rows.append(row(dataset, source, own))
            else:
                rows.append(row(dataset, source, own | reals, tuple(dict.fromkeys(sources[reals]))))
    return rows


def write_evaluation(evaluation: Evaluation, out_dir: str | Path, name: str) -> list[Path]:
    """``predictions.csv``, ``metrics.json`` and the reports (``report.html``, ``report.md``, ``plots/``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "predictions.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=PREDICTION_FIELDS)
        writer.writeheader()
        writer.writerows(asdict(p) for p in evaluation.predictions)
    (out / "metrics.json").write_text(json.dumps(evaluation.to_dict(name), indent=2) + "\n")
    return [out / "predictions.csv", out / "metrics.json", *write_reports(evaluation, out, name)]
