"""Metric tables of scored rows: overall, per dataset and per source, as the papers report them.

Detection metrics (``metrics.detection_metrics``: AUROC, AP, EER, accuracy and balanced accuracy at 0.5,
TPR at 0.1/1/5 % FPR and its thresholds, ECE, Brier, Wasserstein-1) come from the items' scores. A fake
source is scored against the real sources of its dataset (Celeb-synthesis against Celeb-real and
YouTube-real); a real source alone has one class, so its metrics that compare the classes are NaN, its
accuracy is the share of it called real, and its calibration (ECE, Brier) is that of its reals alone. A
video is the frames that share a video id (the manifest's ``Sample.video``), scored by the mean p_fake of
its frames. Localization adds the pixel metrics averaged over each group's fakes with a mask (DeCLIP's
localization numbers are means over fake images).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.manifest import REAL
from ..metrics import PIXEL_METRICS, Videos, detection_metrics
from ..uncertainty import Bootstrap
from .predictions import MapPrediction, Prediction


@dataclass(frozen=True)
class VideoScore:
    """A video (the frames with its id) scored by the mean p_fake of its scored frames."""

    video: str
    dataset: str
    source: str
    label: int
    p_fake: float
    frames: int


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one group: all (``dataset`` None), a dataset (``source`` None) or a source, the
    latter with the real sources it is scored ``against``. ``real`` and ``fake`` count what was scored;
    ``intervals``: the bootstrap interval (low, high) of each of ``uncertainty.INTERVAL_METRICS``, if drawn."""

    dataset: str | None
    source: str | None
    against: tuple[str, ...]
    real: int
    fake: int
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: NaN (undefined metric) and an infinite threshold become None (``json_ready``); the intervals,
        where drawn, as ``intervals``: {metric: [low, high]}."""
        row = json_ready({"dataset": self.dataset, "source": self.source, "against": list(self.against),
                          "real": self.real, "fake": self.fake, **self.metrics})
        if self.intervals:
            row["intervals"] = {metric: [end if math.isfinite(end) else None for end in ends]
                                for metric, ends in self.intervals.items()}
        return row


def json_ready(row: dict) -> dict:
    """NaN (an undefined metric) and infinity (the threshold of a TPR@FPR no score reaches, TPR 0) as None,
    which JSON has; JSON has neither NaN nor infinity."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in row.items()}


def video_scores(predictions: Sequence[Prediction]) -> list[VideoScore]:
    """Scored frames grouped by their video id (``metrics.Videos``), in order of first appearance."""
    scored = [p for p in predictions if p.p_fake is not None]
    if not scored:
        return []
    videos = Videos([p.video for p in scored], [p.label for p in scored])
    scores = videos.scores([p.p_fake for p in scored])
    return [VideoScore(video, scored[first].dataset, scored[first].source, int(label), float(score), int(frames))
            for video, first, label, score, frames in zip(videos.ids, videos.first, videos.labels, scores,
                                                          videos.counts)]


def metric_table(items: Sequence, scores: Sequence[float], bootstrap: Bootstrap | None = None) -> list[MetricRow]:
    """Rows for all ``items`` (each with a ``dataset``, ``source`` and ``label``) ranked by ``scores``,
    then per dataset: the dataset, then each of its sources (in order of appearance); with ``bootstrap``, each
    row's intervals, drawn over its items."""
    if not items:
        return []
    datasets = np.array([item.dataset for item in items], dtype=object)
    sources = np.array([item.source for item in items], dtype=object)
    labels = np.array([item.label for item in items])
    values = np.array(scores, dtype=np.float64)

    def row(dataset: str | None, source: str | None, members: np.ndarray, against: tuple[str, ...] = ()):
        fake = int(labels[members].sum())
        intervals = bootstrap.intervals(labels[members], values[members]) if bootstrap else {}
        return MetricRow(dataset, source, against, int(members.sum()) - fake, fake,
                         detection_metrics(labels[members], values[members]), intervals)

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


def localization_table(predictions: Sequence[MapPrediction]) -> list[dict]:
    """Rows for all images, each dataset and each source: image-level metrics from the score, the count of
    masked fakes and their mean pixel metrics (NaN without one; undefined image metrics are None)."""
    scored = [p for p in predictions if p.score is not None]
    rows = []
    for row in metric_table(scored, [p.score for p in scored]):
        members = [p for p in scored
                   if p.masked and row.dataset in (None, p.dataset) and row.source in (None, p.source)]
        pixel = {key: float(np.nanmean([getattr(p, key) for p in members])) if members else math.nan
                 for key in PIXEL_METRICS}
        rows.append({**row.to_dict(), "masked": len(members), **pixel})
    return rows
