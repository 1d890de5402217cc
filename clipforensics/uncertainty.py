"""Figures with their uncertainty: bootstrap intervals of the ranking metrics, and the sample sizes below which a
figure rests on too little to mean anything.

Intervals are percentile bootstrap intervals, stratified by label (the reals are resampled among the reals and the
fakes among the fakes, so every replicate has both classes in the data's numbers) with a fixed seed. AUROC, AP,
EER and TPR at each of ``metrics.FPR_TARGETS`` are computed for all replicates at once from one ranking of the
scores: a replicate is a count of draws per sample, and its ROC curve the counts' running sums down the ranking,
so each replicate's figures are exactly ``metrics``' figures of the resampled data, ties included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .metrics import CALIBRATION_BINS, FPR_TARGETS

INTERVAL_METRICS = ("auroc", "ap", "eer", *(f"tpr@{name}" for name in FPR_TARGETS))
LOWER_IS_BETTER = frozenset({"eer", "ece", "brier"})
"""The metrics a better detector makes smaller; every other reported metric it makes larger."""
REALS_PER_FPR = 3
"""TPR at FPR x is set by the x * reals highest-scored reals: below 3 / x reals, fewer than three of them."""
SAMPLES_PER_BIN = 15
"""ECE averages over bins: fewer than 15 samples a bin on average, and each bin's gap is mostly noise."""
CHUNK_CELLS = 4_000_000
"""Replicates x samples held in memory at once (about 32 MB a matrix)."""


def better(metric: str) -> str:
    """Which direction is better for ``metric``: "lower" or "higher"."""
    return "lower" if metric in LOWER_IS_BETTER else "higher"


def replicate_counts(labels: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """[replicates, samples]: how often each sample is drawn in each replicate, the reals drawn (with
    replacement) among the reals as often as there are reals, the fakes among the fakes."""
    labels = np.asarray(labels).astype(bool)
    size = labels.size
    rows = np.arange(replicates)[:, None] * size
    draws = [members[rng.integers(0, members.size, (replicates, members.size))]
             for members in (np.flatnonzero(~labels), np.flatnonzero(labels)) if members.size]
    drawn = np.concatenate([rows + part for part in draws], axis=1)
    return np.bincount(drawn.ravel(), minlength=replicates * size).reshape(replicates, size).astype(np.int32)


def weighted_figures(labels: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """AUROC, AP, EER and TPR at ``FPR_TARGETS`` (``INTERVAL_METRICS``) of each row of ``counts`` (the times each
    sample is taken, as ``replicate_counts``), as ``metrics`` defines them; every row must take both classes."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    return _ranked_figures(labels[order], scores[order], counts[:, order].astype(np.int32))


def _ranked_figures(fake: np.ndarray, ranked: np.ndarray, taken: np.ndarray) -> dict[str, np.ndarray]:
    """``weighted_figures`` of samples ranked by score, highest first (``taken``: int32 counts): each row's ROC
    curve is the running sums of its reals and fakes taken down the distinct scores (tied samples move
    together), in integers; the points where a row's curve crosses a false positive rate or FPR + TPR = 1 are
    found by bisection, all rows at once."""
    fakes = taken * fake
    starts = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
    if starts.size < ranked.size:
        taken, fakes = np.add.reduceat(taken, starts, axis=1), np.add.reduceat(fakes, starts, axis=1)
    true_pos = np.cumsum(fakes, axis=1, dtype=np.int32)
    called = np.cumsum(taken, axis=1, dtype=np.int32)
    n_real, n_fake = (called[:, -1] - true_pos[:, -1]).astype(np.int64), true_pos[:, -1].astype(np.int64)
    area = np.sum((taken - fakes) * (2 * true_pos - fakes), axis=1, dtype=np.int64)  # the trapezoids, doubled
    curve = _Curve(called - true_pos, true_pos, n_real, n_fake)
    figures = {"auroc": area / (2 * n_real * n_fake),
               "ap": np.sum(fakes * (true_pos / np.maximum(called, 1)), axis=1) / n_fake,
               "eer": curve.equal_error_rates()}
    for name, rate in FPR_TARGETS.items():
        figures[f"tpr@{name}"] = curve.tpr_within(rate)
    return figures


@dataclass(frozen=True)
class _Curve:
    """Rows of ROC curves as running counts at each distinct score (the vertex (0, 0) before the first)."""

    false_pos: np.ndarray
    true_pos: np.ndarray
    n_real: np.ndarray
    n_fake: np.ndarray

    def at(self, counts: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """``counts`` (false_pos or true_pos) at each row's vertex, vertex 0 being (0, 0)."""
        rows = np.arange(len(counts))
        return np.where(vertices > 0, counts[rows, np.maximum(vertices - 1, 0)], 0).astype(np.int64)

    def leading(self, holds) -> np.ndarray:
        """Per row, how many of its vertices after (0, 0) satisfy ``holds`` (false_pos, true_pos), a condition
        that holds on a prefix of each row: bisection over all rows at once."""
        low = np.zeros(len(self.n_real), dtype=np.int64)
        high = np.full(len(self.n_real), self.false_pos.shape[1])
        while (open_ := low < high).any():
            middle = (low + high) // 2
            yes = holds(self.at(self.false_pos, middle + 1), self.at(self.true_pos, middle + 1))
            low, high = np.where(open_ & yes, middle + 1, low), np.where(open_ & ~yes, middle, high)
        return low

    def tpr_within(self, rate: float) -> np.ndarray:
        """``metrics.tpr_at_fpr``: the TPR at the last vertex whose FPR (compared as a float) is at most ``rate``."""
        reached = self.leading(lambda false_pos, _: false_pos / self.n_real <= rate)
        return self.at(self.true_pos, reached) / self.n_fake

    def equal_error_rates(self) -> np.ndarray:
        """``metrics.eer``: where FPR + TPR = 1 along the linearly interpolated curve (the first vertex at or past
        it found in integers: FP * fakes + TP * reals >= reals * fakes)."""
        end = self.leading(lambda fp, tp: fp * self.n_fake + tp * self.n_real < self.n_real * self.n_fake) + 1
        low, high = self.at(self.false_pos, end - 1) / self.n_real, self.at(self.false_pos, end) / self.n_real
        gap_low = low + self.at(self.true_pos, end - 1) / self.n_fake - 1
        gap_high = high + self.at(self.true_pos, end) / self.n_fake - 1
        return low - gap_low / (gap_high - gap_low) * (high - low)


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are drawn: ``replicates`` resamples (0: no intervals), ``seed``, ``confidence``."""

    replicates: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.replicates < 0 or not 0 < self.confidence < 1:
            raise ValueError(f"a bootstrap needs replicates >= 0 and a confidence in (0, 1), got {self.replicates} "
                             f"and {self.confidence}")

    def intervals(self, labels: np.ndarray, scores: np.ndarray) -> dict[str, tuple[float, float]]:
        """The ``confidence`` percentile interval of each of ``INTERVAL_METRICS``; NaN ends with one class (the
        metrics are undefined), none with no replicates. The same data and seed give the same intervals."""
        labels = np.asarray(labels).astype(bool)
        if not self.replicates:
            return {}
        if labels.all() or not labels.any():
            return {metric: (math.nan, math.nan) for metric in INTERVAL_METRICS}
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        fake, ranked = labels[order], np.asarray(scores, dtype=np.float64)[order]
        rng = np.random.default_rng(self.seed)
        chunk = max(1, CHUNK_CELLS // labels.size)
        parts = [_ranked_figures(fake, ranked, replicate_counts(fake, min(chunk, self.replicates - start), rng))
                 for start in range(0, self.replicates, chunk)]
        tail = (1 - self.confidence) / 2
        return {metric: tuple(float(end) for end in np.quantile(np.concatenate([part[metric] for part in parts]),
                                                                 (tail, 1 - tail)))
                for metric in INTERVAL_METRICS}

    def to_dict(self) -> dict:
        return {"replicates": self.replicates, "seed": self.seed, "confidence": self.confidence,
                "stratified": "by label"}


@dataclass(frozen=True)
class SampleSize:
    """What a figure rests on (``count`` of ``what``: "real" samples, or all "samples") against what it ``needs``,
    and the ``rule`` that sets the need."""

    figure: str
    what: str
    count: int
    needs: int
    rule: str

    @property
    def enough(self) -> bool:
        return self.count >= self.needs

    def warning(self, unit: str) -> str:
        """The figure, its count and its need, ``unit`` naming the samples (frames, videos)."""
        what = f"real {unit}" if self.what == "real" else unit
        return (f"{self.figure} rests on {self.count} {what}; it needs at least {self.needs} ({self.rule}) to mean "
                "anything")

    def to_dict(self) -> dict:
        return {self.what: self.count, "needs": self.needs}


def reals_needed(fpr: float) -> int:
    """The real samples a TPR (or threshold) at FPR ``fpr`` needs: 3 / fpr (300 at 1 %), so that about three false
    positives set it."""
    return math.ceil(round(REALS_PER_FPR / fpr, 9))


def sample_sizes(real: int, total: int, fprs: dict[str, float], bins: int = CALIBRATION_BINS) -> list[SampleSize]:
    """What each figure rests on: a TPR or threshold at each of ``fprs`` (its name: the rate) on the ``real``
    samples, ECE over ``bins`` bins on all ``total`` samples."""
    return [*(SampleSize(name, "real", real, reals_needed(rate), f"{REALS_PER_FPR} / {100 * rate:g}%")
              for name, rate in fprs.items()),
            SampleSize("ECE", "samples", total, SAMPLES_PER_BIN * bins, f"{SAMPLES_PER_BIN} a bin over {bins} bins")]
