"""Fitting a detector's calibration on validation data (``clipforensics calibrate``).

A temperature T on the logit of the raw p_fake is fitted by the labels' negative log-likelihood: a frame's
calibrated score is ``sigmoid(logit(p_raw) / T)`` (``Calibration.apply``), a video's the aggregate of its
frames' calibrated scores, and the likelihood is taken over frames or over videos (``level``). Operating
thresholds are then picked on the calibrated scores at the same level: ``eer``, ``fpr@X%`` and ``f1``;
a score at or above a threshold is called fake.

``fit_temperature`` and ``operating_thresholds`` are pure functions on arrays; ``fit_calibration`` does
both on scored frames and measures NLL, ECE and Brier before and after; ``calibrate`` scores the data with
the raw model and writes the calibrated model folder, ``calibration.json`` and ``reliability.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError
from ..inference.calibration import CONFIG_KEY, EPSILON, Calibration
from ..metrics import AGGREGATES, Videos, brier, expected_calibration_error, log_loss, reliability, tpr_at_fpr
from ..uncertainty import SampleSize, sample_sizes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .predictions import Prediction

LEVELS = ("video", "frame")
OPERATING_POINT = "eer"
TEMPERATURE_BOUNDS = (0.05, 100.0)
"""The temperatures searched; a fit at a bound says the scores are (nearly) separable, or carry no signal.
From 0.05 up, ``Calibration.apply`` stays finite at the clipped extremes (exp(16.2 / 0.05) fits a float)."""
GRID_POINTS = 41
"""Temperatures spread log-evenly over the bounds, to find the basin the minimiser then refines."""
REPORT_FILE = "calibration.json"
FIGURE_FILE = "reliability.png"


def logits(raw_scores: np.ndarray) -> np.ndarray:
    """logit(p) of raw scores clipped to [EPSILON, 1 - EPSILON], as ``Calibration.apply`` clips them."""
    p = np.clip(np.asarray(raw_scores, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def calibrated_scores(raw_scores: np.ndarray, temperature: float) -> np.ndarray:
    """``Calibration(temperature).apply`` over an array of raw p_fake."""
    from scipy.special import expit

    return expit(logits(raw_scores) / temperature)


def fit_temperature(labels: np.ndarray, raw_scores: np.ndarray, videos: Sequence[str] | None = None,
                    aggregate: str = "mean") -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (1 = fake) under the calibrated
    scores: per frame, or (``videos``: each frame's video id) per video, a video scored by the ``aggregate``
    of its frames' calibrated scores. Searched on log T within ``TEMPERATURE_BOUNDS``: a log-even grid
    finds the basin, a bounded Brent search refines it."""
    from scipy.optimize import minimize_scalar
    from scipy.special import expit

    labels, raw_scores = _checked(labels, raw_scores)
    z = logits(raw_scores)
    if videos is None:
        _need_both(labels, "frames")
        signs = np.where(labels == 1, -1.0, 1.0)

        def nll(log_t: float) -> float:  # -log sigmoid(+-z/T), exactly, however small T is
            return float(np.mean(np.logaddexp(0.0, signs * z / np.exp(log_t))))
    else:
        groups = Videos(videos, labels)
        _need_both(groups.labels, "videos")

        def nll(log_t: float) -> float:
            return log_loss(groups.labels, groups.scores(expit(z / np.exp(log_t)), aggregate))

    grid = np.linspace(*np.log(TEMPERATURE_BOUNDS), GRID_POINTS)
    best = int(np.argmin([nll(log_t) for log_t in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    found = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-9})
    return float(np.exp(found.x if found.fun <= nll(grid[best]) else grid[best]))


def threshold_name(target_fpr: float) -> str:
    """The name of the threshold for a target false positive rate: ``fpr@1%`` for 0.01, ``fpr@0.5%``."""
    return f"fpr@{100 * target_fpr:g}%"


def operating_thresholds(labels: np.ndarray, scores: np.ndarray, target_fpr: float = 0.01) -> dict[str, float]:
    """Thresholds on ``scores`` (fake at or above), each one of the score values:

    - ``eer``: the threshold minimising |FPR - FNR|;
    - ``fpr@X%`` (``threshold_name``): the lowest threshold with FPR <= ``target_fpr`` (``metrics.tpr_at_fpr``);
      when even the highest score has a larger FPR, the next float above it (nothing is called fake);
    - ``f1``: the threshold of the best F1 of the fake class.

    Ties go to the lowest threshold. Both classes must be present."""
    if not 0 < target_fpr < 1:
        raise UsageError(f"the target false positive rate must be in (0, 1), not {target_fpr}")
    labels, scores = _checked(labels, scores)
    _need_both(labels, "items")
    candidates, false_pos, true_pos = _counts(labels, scores)
    reals, fakes = int(np.sum(labels == 0)), int(np.sum(labels == 1))
    gap = np.abs(false_pos * fakes - (fakes - true_pos) * reals)  # |FPR - FNR| * reals * fakes, exact
    f1 = 2 * true_pos / (2 * true_pos + false_pos + (fakes - true_pos))
    _, within = tpr_at_fpr(labels, scores, target_fpr)
    return {"eer": float(candidates[np.argmin(gap)]),
            threshold_name(target_fpr): within if np.isfinite(within) else float(np.nextafter(candidates[-1], np.inf)),
            "f1": float(candidates[np.argmax(f1)])}


def rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """FPR and TPR when scores at or above ``threshold`` are called fake."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    called = scores >= threshold
    return {"fpr": float(np.mean(called[labels == 0])), "tpr": float(np.mean(called[labels == 1]))}


def _counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct scores, ascending, and the false and true positives when each is the threshold."""
    candidates = np.unique(scores)
    reals, fakes = np.sort(scores[labels == 0]), np.sort(scores[labels == 1])
    false_pos = reals.size - np.searchsorted(reals, candidates, side="left")
    true_pos = fakes.size - np.searchsorted(fakes, candidates, side="left")
    return candidates, false_pos, true_pos


def _checked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels and scores must be 1-D of one length, got {labels.shape} and {scores.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got values {np.unique(labels).tolist()}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return labels.astype(np.int64), scores


def _need_both(labels: np.ndarray, unit: str) -> None:
    fakes = int(np.sum(labels))
    if fakes == 0 or fakes == labels.size:
        raise UsageError(f"calibration needs real and fake {unit}, got {labels.size - fakes} real and {fakes} "
                         "fake: give validation data with both")


# --- a fit on scored frames -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationFit:
    """What a fit found: the calibration, the level's labels with their scores before (raw) and after it,
    NLL, ECE and Brier of both, and each threshold with its FPR and TPR."""

    calibration: Calibration
    target_fpr: float
    labels: np.ndarray
    before: np.ndarray
    after: np.ndarray
    frames: int
    failed: int

    @property
    def figures(self) -> dict[str, dict[str, float]]:
        return {"before": calibration_figures(self.labels, self.before),
                "after": calibration_figures(self.labels, self.after)}

    @property
    def thresholds(self) -> dict[str, dict[str, float]]:
        return {name: {"threshold": value, **rates(self.labels, self.after, value)}
                for name, value in self.calibration.thresholds.items()}

    @property
    def sample_sizes(self) -> list[SampleSize]:
        """What the fpr@ threshold (its real samples) and ECE (all samples) rest on, against what they need."""
        return sample_sizes(int(np.sum(self.labels == 0)), len(self.labels),
                            {threshold_name(self.target_fpr): self.target_fpr})

    @property
    def warnings(self) -> list[str]:
        """The figures that rest on too few samples, one line each."""
        return [size.warning(self.calibration.level + "s") for size in self.sample_sizes if not size.enough]

    def to_dict(self) -> dict:
        """What ``calibration.json`` holds."""
        return {**self.calibration.to_dict(), "target_fpr": self.target_fpr,
                "counts": {"frames": self.frames, "failed": self.failed, self.calibration.level + "s": len(self.labels),
                           "real": int(np.sum(self.labels == 0)), "fake": int(np.sum(self.labels == 1))},
                "sample_sizes": {size.figure: size.to_dict() for size in self.sample_sizes}, "warnings": self.warnings,
                **self.figures, "thresholds": self.thresholds}

    def summary_lines(self) -> list[str]:
        level, figures = self.calibration.level, self.figures
        lines = [f"temperature {self.calibration.temperature:.4f} fitted on {len(self.labels)} {level}s "
                 f"({int(np.sum(self.labels == 0))} real, {int(np.sum(self.labels == 1))} fake; {self.frames} frames"
                 f"{f', {self.failed} failed' if self.failed else ''})"]
        if not TEMPERATURE_BOUNDS[0] * 1.001 < self.calibration.temperature < TEMPERATURE_BOUNDS[1] / 1.001:
            lines.append("  note: the temperature is at the end of its range: the scores are (nearly) separable, or "
                         "carry (almost) no signal, on these data")
        lines += [f"  {name:<6} NLL {values['nll']:.4f}  ECE {values['ece']:.4f}  Brier {values['brier']:.4f}"
                  for name, values in figures.items()]
        lines += [f"  threshold {name:<10} {values['threshold']:.6g}  FPR {values['fpr']:.4f}  TPR {values['tpr']:.4f}"
                  f"{'  (operating point)' if name == self.calibration.operating_point else ''}"
                  for name, values in self.thresholds.items()]
        return lines


def calibration_figures(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """NLL, ECE and Brier score of one set of scores."""
    return {"nll": log_loss(labels, scores), "ece": expected_calibration_error(labels, scores),
            "brier": brier(labels, scores)}


def fit_calibration(rows: Sequence[Prediction], level: str = "video", aggregate: str = "mean",
                    target_fpr: float = 0.01, fitted_on: dict | None = None) -> CalibrationFit:
    """Temperature and thresholds fitted on scored frames (``predict_samples``' rows; those that failed are
    left out and counted). ``fitted_on``: what the data were (inputs, split), recorded with the counts and
    the date."""
    if level not in LEVELS:
        raise UsageError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if aggregate not in AGGREGATES:
        raise UsageError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    scored = [row for row in rows if row.p_fake is not None]
    if not scored:
        raise UsageError("no frame could be scored, so there is nothing to calibrate on")
    labels = np.array([row.label for row in scored])
    raw = np.array([row.p_fake for row in scored], dtype=np.float64)
    videos = [row.video for row in scored] if level == "video" else None
    temperature = fit_temperature(labels, raw, videos, aggregate)
    level_labels, before, after = labels, calibrated_scores(raw, 1.0), calibrated_scores(raw, temperature)
    if videos is not None:
        groups = Videos(videos, labels)
        level_labels, before, after = groups.labels, groups.scores(before, aggregate), groups.scores(after, aggregate)
    counts = {"real": int(np.sum(level_labels == 0)), "fake": int(np.sum(level_labels == 1))}
    calibration = Calibration(temperature, level, aggregate, operating_thresholds(level_labels, after, target_fpr),
                              OPERATING_POINT, {**(fitted_on or {}), **counts,
                                                "date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return CalibrationFit(calibration, target_fpr, level_labels, before, after, len(rows), len(rows) - len(scored))


def reliability_figure(fit: CalibrationFit) -> Figure:
    """Observed share of fakes against the mean score per bin (``metrics.reliability``, the bins of the
    ECE), before and after calibration."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.subplots(1, 2, squeeze=False)[0]
    for ax, (name, scores) in zip(axes, (("before", fit.before), ("after", fit.after))):
        table = reliability(fit.labels, scores)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        shown = table.counts > 0
        ax.plot(table.scores[shown], table.labels[shown], marker="o")
        ece = expected_calibration_error(fit.labels, scores)
        title = "raw" if name == "before" else f"T = {fit.calibration.temperature:.3g}"
        ax.set_title(f"{name} ({title}): ECE {ece:.3f}")
        ax.set_xlabel(f"mean p_fake per bin ({fit.calibration.level} level)")
        ax.set_ylabel("share of fakes")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
    return figure


# --- the run: score, fit, write -----------------------------------------------------------------------


def calibrate(model: str | Path, data: Sequence[str | Path], output: str | Path, level: str = "video",
              target_fpr: float = 0.01, aggregate: str = "mean", split: str | None = None, device: str | None = None,
              precision: str = "auto", batch_size: int = 32, progress: bool | None = None) -> CalibrationFit:
    """Scores ``data`` (what ``evaluate`` reads: aligned face crops) with the raw model (a calibrated one's
    calibration is ignored and refitted), fits the calibration, and writes the model folder ``output``: the
    same weights (a hard link to a clipforensics folder's ``model.safetensors`` where the filesystem allows,
    else a copy; a published layout is converted) and ``config.json`` with the calibration; beside them
    ``calibration.json`` and ``reliability.png``. ``output`` must be new or empty."""
    from ..hub import zoo
    from ..inference.predictor import load
    from .predictions import load_samples, predict_samples

    output = Path(output)
    check_empty(output)
    if not 0 < target_fpr < 1:
        raise UsageError(f"the target false positive rate must be in (0, 1), not {target_fpr}")
    source = zoo.resolve(str(model)) if str(model) in zoo.ZOO else Path(model)
    samples = load_samples(data, split)
    _need_both(np.array([sample.label for sample in samples]), "frames")
    predictor = load(source, device, precision, batch_size, calibrated=False)
    if not predictor.has_head:
        raise UsageError(f"{model} has no detection head: calibrate fits a detector's p_fake")
    rows = predict_samples(predictor, samples, "detection", progress=progress)
    fitted_on = {"inputs": [str(spec) for spec in data], **({"split": split} if split else {})}
    fit = fit_calibration(rows, level, aggregate, target_fpr, fitted_on)
    write_calibrated(source, fit, output)
    return fit


def check_empty(folder: Path) -> None:
    """A model folder is written only where nothing is: a new or empty folder."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} already exists and is not empty: name a new or empty folder for the "
                         "calibrated model (nothing is written over)")


def write_calibrated(source: Path, fit: CalibrationFit, folder: Path) -> Path:
    """The calibrated model folder, staged beside ``folder`` and renamed into place when whole."""
    from ..hub.checkpoints import save_model_with
    from .plots import png

    check_empty(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    staging.mkdir()
    try:
        save_model_with(source, staging, {CONFIG_KEY: fit.calibration.to_dict()})
        (staging / REPORT_FILE).write_text(json.dumps(fit.to_dict(), indent=2) + "\n")
        (staging / FIGURE_FILE).write_bytes(png(reliability_figure(fit)))
        check_empty(folder)
        staging.replace(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
