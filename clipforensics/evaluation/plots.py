"""The reports' figures, drawn on matplotlib ``Figure`` objects (Agg canvas), never pyplot's global state.

Detection: ROC and precision-recall curves per dataset (frame and video level), p_fake histograms per
source, confusion matrices at 0.5, reliability diagrams per dataset. Localization: example maps (input, true
mask, predicted map).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..colours import for_matplotlib, of_label
from ..metrics import auroc, average_precision, cumulative_counts, expected_calibration_error, reliability

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .evaluations import DetectionEvaluation, LocalizationEvaluation
    from .predictions import Example

LINE_STYLES = ("-", "--", "-.", ":")
"""A histogram's line style a source, in the order the sources of one label come."""
HISTOGRAM_BINS = (10, 50)
"""Fewest and most bins of a histogram."""


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def detection_figures(evaluation: DetectionEvaluation) -> dict[str, Figure]:
    """``roc``, ``pr``, ``histograms``, ``confusion`` and ``reliability``; none when nothing was scored."""
    if not evaluation.videos:
        return {}
    return {"roc": roc_figure(evaluation), "pr": pr_figure(evaluation),
            "histograms": histogram_figure(evaluation), "confusion": confusion_figure(evaluation),
            "reliability": reliability_figure(evaluation)}


def localization_figures(evaluation: LocalizationEvaluation) -> dict[str, Figure]:
    """``examples``; none when no masked fake was scored."""
    return {"examples": examples_figure(evaluation.examples)} if evaluation.examples else {}


def curves(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ROC (fpr, tpr) and precision-recall (recall, precision) vertices; both classes must be present.

    The same thresholds as ``metrics.auroc`` and ``metrics.average_precision``, so the plotted curves are the
    ones those numbers measure."""
    false_pos, true_pos = cumulative_counts(np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64))
    fpr, tpr = np.r_[0, false_pos] / false_pos[-1], np.r_[0, true_pos] / true_pos[-1]
    return fpr, tpr, true_pos / true_pos[-1], true_pos / (true_pos + false_pos)


def roc_figure(evaluation: DetectionEvaluation) -> Figure:
    figure, axes = _figure(1, 2)
    for ax, level in zip(axes[0], ("frame", "video")):
        for dataset, (labels, scores) in _by_dataset(evaluation.scored(level)).items():
            if 0 < labels.sum() < len(labels):
                fpr, tpr, _, _ = curves(labels, scores)
                ax.plot(fpr, tpr, label=f"{dataset} (AUROC {100 * auroc(labels, scores):.1f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        _decorate(ax, f"{level} level", "false positive rate", "true positive rate")
    return figure


def pr_figure(evaluation: DetectionEvaluation) -> Figure:
    figure, axes = _figure(1, 2)
    for ax, level in zip(axes[0], ("frame", "video")):
        for dataset, (labels, scores) in _by_dataset(evaluation.scored(level)).items():
            if 0 < labels.sum() < len(labels):
                _, _, recall, precision = curves(labels, scores)
                ax.plot(np.r_[0, recall], np.r_[precision[0], precision], drawstyle="steps-pre",
                        label=f"{dataset} (AP {100 * average_precision(labels, scores):.1f})")
        _decorate(ax, f"{level} level", "recall", "precision")
    return figure


def histogram_figure(evaluation: DetectionEvaluation) -> Figure:
    """Per dataset, each source's frame p_fake, reals in the real colour and fakes in the fake colour (one line
    style a source), over bins fitted to the dataset's scores, so that distributions crowded together (a
    confident or an uncalibrated model's) still show apart."""
    frames = evaluation.scored("frame")
    datasets = list(dict.fromkeys(p.dataset for p in frames))
    columns = min(3, len(datasets))
    figure, axes = _figure(math.ceil(len(datasets) / columns), columns)
    for ax, dataset in zip(axes.flat, datasets):
        sources: dict[str, list] = {}
        for p in frames:
            if p.dataset == dataset:
                sources.setdefault(p.source, []).append(p)
        bins = score_bins([p.p_fake for members in sources.values() for p in members])
        styles: dict[int, int] = {}
        for source, members in sources.items():
            label = members[0].label
            style = LINE_STYLES[styles.setdefault(label, 0) % len(LINE_STYLES)]
            styles[label] += 1
            ax.hist([p.p_fake for p in members], bins=bins, histtype="step", linewidth=1.5, linestyle=style,
                    color=for_matplotlib(of_label(label)),
                    label=f"{source} ({'fake' if label else 'real'}, {len(members)})")
        if bins[0] <= 0.5 <= bins[-1]:
            ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        _decorate(ax, dataset, "p_fake", "frames", square=False)
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    return figure


def score_bins(scores: Sequence[float]) -> np.ndarray:
    """Histogram bin edges over the scores' own range, as many as numpy's "auto" rule gives (within
    ``HISTOGRAM_BINS``): scores that all lie between 0.49 and 0.51 get bins that tell them apart."""
    values = np.asarray(scores, dtype=np.float64)
    fewest, most = HISTOGRAM_BINS
    count = int(np.clip(len(np.histogram_bin_edges(values, bins="auto")) - 1, fewest, most))
    return np.histogram_bin_edges(values, bins=count)


def confusion_figure(evaluation: DetectionEvaluation) -> Figure:
    levels = ("frame", "video")
    groups = {level: _by_dataset(evaluation.scored(level)) for level in levels}
    datasets = list(groups["frame"])
    figure, axes = _figure(len(levels), len(datasets), size=3.2)
    for row, level in enumerate(levels):
        for ax, dataset in zip(axes[row], datasets):
            labels, scores = groups[level][dataset]
            counts = np.array([[np.sum((labels == truth) & ((scores >= 0.5) == called)) for called in (False, True)]
                               for truth in (0, 1)])
            ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
            for (i, j), count in np.ndenumerate(counts):
                ax.text(j, i, str(count), ha="center", va="center",
                        color="white" if count > counts.max() / 2 else "black")
            ax.set_xticks([0, 1], ["real", "fake"])
            ax.set_yticks([0, 1], ["real", "fake"])
            ax.set_xlabel("called (p_fake >= 0.5)")
            ax.set_ylabel("truth")
            ax.set_title(f"{dataset}, {level} level")
    return figure


def reliability_figure(evaluation: DetectionEvaluation) -> Figure:
    """Per dataset, frame- and video-level reliability: the share of fakes against the mean p_fake of each
    non-empty bin (``metrics.reliability``), a disc behind each sized by the bin's count, and the diagonal."""
    levels = ("frame", "video")
    groups = {level: _by_dataset(evaluation.scored(level)) for level in levels}
    datasets = list(groups["frame"])
    columns = min(3, len(datasets))
    figure, axes = _figure(math.ceil(len(datasets) / columns), columns)
    for ax, dataset in zip(axes.flat, datasets):
        for level, marker in zip(levels, "os"):
            labels, scores = groups[level][dataset]
            binned = reliability(labels, scores)
            filled = binned.counts > 0
            ece = 100 * expected_calibration_error(labels, scores)
            line, = ax.plot(binned.scores[filled], binned.labels[filled], marker=marker, markersize=3,
                            label=f"{level} (ECE {ece:.1f})")
            ax.scatter(binned.scores[filled], binned.labels[filled], color=line.get_color(), alpha=0.3,
                       s=200 * binned.counts[filled] / binned.counts.max())
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        _decorate(ax, dataset, "mean p_fake in bin", "share of fakes in bin")
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    return figure


def examples_figure(examples: Sequence[tuple[str, Example]]) -> Figure:
    """One row per example: the model's input, the true mask, the predicted probability map."""
    figure, axes = _figure(len(examples), 3, size=2.6)
    for row, (path, example) in zip(axes, examples):
        pictures = (example.image, example.truth.astype(np.float32), example.probabilities)
        for ax, picture, title in zip(row, pictures, (Path(path).name, "mask", "map")):
            if picture.ndim == 3:
                ax.imshow(picture)
            else:
                ax.imshow(picture, cmap="magma", vmin=0, vmax=1)
            ax.set_title(title, fontsize="small")
            ax.axis("off")
    return figure


def _by_dataset(items: Sequence) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labels and p_fake of each dataset's items (frames or videos)."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item.dataset, []).append(item)
    return {dataset: (np.array([i.label for i in group]), np.array([i.p_fake for i in group], dtype=np.float64))
            for dataset, group in groups.items()}


def _figure(rows: int, columns: int, size: float = 4.5) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size * columns, size * rows), layout="constrained")
    return figure, np.array(figure.subplots(rows, columns, squeeze=False))


def _decorate(ax: Axes, title: str, xlabel: str, ylabel: str, square: bool = True) -> None:
    """Titles and legend; ``square``: both axes 0 to 1 at the same scale (a curve's), else as drawn."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if square:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, "needs real and fake samples", ha="center", va="center", color="grey")
