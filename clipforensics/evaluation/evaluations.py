"""A run's rows and what they measure: ``Evaluation(task, rows)`` is a ``DetectionEvaluation`` (frame and
video tables) or a ``LocalizationEvaluation`` (image and pixel table, example maps)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ..data.manifest import Sample
from ..errors import UsageError
from ..metrics import FPR_TARGETS
from ..uncertainty import Bootstrap, sample_sizes
from .explained import ExplainedExample, explained_examples
from .perturbations import Perturbation
from .predictions import EXAMPLES, Example, MapPrediction, Model, Prediction, check_task, predict_samples
from .tables import MetricRow, VideoScore, json_ready, localization_table, metric_table, video_scores

LEVELS = ("frame", "video")
HEADLINE = {"auroc": "AUROC", "ap": "AP", "eer": "EER"}
"""The video-level figures a detection run prints per dataset."""
SHOWN_FAILURES = 10


class Evaluation(ABC):
    """Rows of one task in manifest order (``predict_samples``), the model's provenance and the
    perturbation applied. ``Evaluation(task, ...)`` builds the task's subclass."""

    task: ClassVar[str]
    unit: ClassVar[str]
    """What a row is: a frame (detection) or an image (localization)."""

    def __new__(cls, task: str | None = None, *args, **kwargs) -> Evaluation:
        if cls is Evaluation:
            check_task(task)
            cls = {"detection": DetectionEvaluation, "localization": LocalizationEvaluation}[task]
        return super().__new__(cls)

    def __init__(self, task: str, rows: Sequence[Prediction | MapPrediction], model: dict | None = None,
                 perturbation: str | None = None):
        if task != self.task:
            raise UsageError(f"{type(self).__name__} evaluates {self.task}, not {task!r}")
        self.rows = list(rows)
        self.model = dict(model or {})
        self.perturbation = perturbation

    @property
    def failed(self) -> list[Prediction | MapPrediction]:
        return [row for row in self.rows if row.error is not None]

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many rows, scored and failed, and the task's own counts."""

    @abstractmethod
    def to_dict(self, name: str) -> dict:
        """What ``metrics.json`` holds."""

    def summary_lines(self, out_dir: str | Path) -> list[str]:
        """What a run prints when done: counts, headline metrics, and the first failed inputs."""
        out = Path(out_dir)
        failed = self.failed
        lines = [*self._headline(out), *(f"  failed: {row.error}" for row in failed[:SHOWN_FAILURES])]
        if len(failed) > SHOWN_FAILURES:
            lines.append(f"  ... and {len(failed) - SHOWN_FAILURES} more in {out / 'predictions.csv'}")
        return lines

    @abstractmethod
    def _headline(self, out: Path) -> list[str]:
        """The counts line and the headline metrics."""


class DetectionEvaluation(Evaluation):
    """Frames (``Prediction``), the videos they make, the frame- and video-level metric tables, each row with
    the bootstrap intervals of its ranking metrics (drawn over the level's items: frames or videos), and the example
    faces the report shows, explained (``explained``)."""

    task = "detection"
    unit = "frame"
    rows: list[Prediction]

    def __init__(self, task: str, rows: Sequence[Prediction], model: dict | None = None,
                 perturbation: str | None = None, video_score: str = "people", bootstrap: Bootstrap = Bootstrap(),
                 examples: Sequence[ExplainedExample] = ()):
        super().__init__(task, rows, model, perturbation)
        self.examples = list(examples)
        self.video_score = video_score
        """The video rule the run was asked for (``inference.verdicts``). A video of face crops (one a frame, no boxes)
        is one person, so either rule scores it by its frames' mean p_fake."""
        self.bootstrap = bootstrap
        self.videos: list[VideoScore] = video_scores(self.rows)
        self.tables: dict[str, list[MetricRow]] = {}
        for level in ("frame", "video"):
            items = self.scored(level)
            self.tables[level] = metric_table(items, [item.p_fake for item in items], bootstrap)

    @property
    def warnings(self) -> list[str]:
        """The figures that rest on too few samples (``uncertainty.sample_sizes``): per level and figure, the
        first row that falls short (the largest group, as rows go from all to each source) and how many more do.
        TPR at a false positive rate counts where both classes were scored, ECE everywhere."""
        fprs = {f"TPR@{name}": rate for name, rate in FPR_TARGETS.items()}
        lines = []
        for level, rows in self.tables.items():
            short: dict[str, list[str]] = {}
            for row in rows:
                for size in sample_sizes(row.real, row.real + row.fake, fprs):
                    if not size.enough and (size.what != "real" or row.fake and row.real):
                        group = "/".join(part for part in (row.dataset, row.source) if part) or "all"
                        short.setdefault(size.figure, []).append(f"{group}: {size.warning(level + 's')}")
            lines += [f"{level} level, {found[0]}" + (f" ({len(found) - 1} more rows fall short)" if found[1:] else "")
                      for found in short.values()]
        return lines

    def scored(self, level: str) -> list[Prediction] | list[VideoScore]:
        """What the ``level`` ("frame" or "video") table scores: scored frames, or videos."""
        if level not in LEVELS:
            raise UsageError(f"level must be 'frame' or 'video', not {level!r}")
        return self.videos if level == "video" else [p for p in self.rows if p.p_fake is not None]

    def counts(self) -> dict[str, int]:
        failed = len(self.failed)
        return {"frames": len(self.rows), "scored": len(self.rows) - failed, "failed": failed,
                "videos": len(self.videos)}

    def to_dict(self, name: str) -> dict:
        return {"name": name, "model": self.model, "perturbation": self.perturbation, "video_score": self.video_score,
                "counts": self.counts(), "bootstrap": self.bootstrap.to_dict() if self.bootstrap.replicates else None,
                "warnings": self.warnings,
                "tables": {level: [row.to_dict() for row in rows] for level, rows in self.tables.items()}}

    def _headline(self, out: Path) -> list[str]:
        counts = self.counts()
        rule = f" (--video-score {self.video_score}: one person each, its frames' mean)" if counts["videos"] else ""
        return [f"{counts['frames']} frames: {counts['scored']} scored, {counts['failed']} failed; "
                f"{counts['videos']} videos{rule} -> {out / 'report.html'}",
                *(f"  {row.dataset}: video " + ", ".join(f"{label} {row.metrics[key]:.4f}{_interval(row, key)}"
                                                        for key, label in HEADLINE.items())
                  for row in self.tables["video"] if row.source is None and row.dataset is not None),
                *(f"  warning: {line}" for line in self.warnings)]


def _interval(row: MetricRow, key: str) -> str:
    """`` [low, high]`` of ``row``'s ``key``, where drawn and defined."""
    low, high = row.intervals.get(key, (math.nan, math.nan))
    return f" [{low:.4f}, {high:.4f}]" if math.isfinite(low) and math.isfinite(high) else ""


class LocalizationEvaluation(Evaluation):
    """Images (``MapPrediction``) and one table: image-level metrics from the score, pixel metrics
    averaged over the masked fakes, overall, per dataset and per source."""

    task = "localization"
    unit = "image"
    rows: list[MapPrediction]

    def __init__(self, task: str, rows: Sequence[MapPrediction], model: dict | None = None,
                 perturbation: str | None = None):
        super().__init__(task, rows, model, perturbation)
        self.table: list[dict] = localization_table(self.rows)

    @property
    def examples(self) -> list[tuple[str, Example]]:
        """The first masked fakes that carry their maps, with their paths."""
        return [(row.path, row.example) for row in self.rows if row.example is not None][:EXAMPLES]

    def counts(self) -> dict[str, int]:
        failed = len(self.failed)
        return {"images": len(self.rows), "scored": len(self.rows) - failed, "failed": failed,
                "masked": sum(row.masked for row in self.rows)}

    def to_dict(self, name: str) -> dict:
        return {"name": name, "task": "localization", "model": self.model, "perturbation": self.perturbation,
                "counts": self.counts(), "table": [json_ready(row) for row in self.table]}

    def _headline(self, out: Path) -> list[str]:
        overall = self.table[0] if self.table else None
        pixel = (f"; IoU {overall['iou']:.4f}, F1 {overall['f1']:.4f}, best F1 {overall['best_f1']:.4f}, "
                 f"pixel AP {overall['pixel_ap']:.4f} over {overall['masked']} masked fakes" if overall else "")
        return [f"{len(self.rows)} images: {len(self.failed)} failed{pixel} -> {out / 'report.html'}"]


def evaluate(predictor: Model, samples: Sequence[Sample], task: str = "detection",
             perturb: Perturbation | None = None, progress: bool | None = None) -> Evaluation:
    """``predict_samples`` over ``samples``, then the task's ``Evaluation`` of the rows."""
    check_task(task)
    if not samples:
        raise UsageError("no frames to evaluate")
    rows = predict_samples(predictor, samples, task, perturb, progress)
    explained = {"examples": explained_examples(predictor, rows, perturb)} if task == "detection" else {}
    return Evaluation(task, rows, dict(predictor.provenance), str(perturb) if perturb else None, **explained)
