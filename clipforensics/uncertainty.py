"""Figures with their uncertainty: bootstrap intervals of the ranking metrics, and the sample sizes below which a
figure rests on too little to mean anything.

Intervals are percentile bootstrap intervals, stratified by label (the reals are resampled among the reals and the
fakes among the fakes, so every replicate has both classes in the data's numbers) with a fixed seed. AUROC, AP,
EER and TPR at each of ``metrics.FPR_TARGETS`` are computed for all replicates at once from one ranking of the
scores (``Ranking``): a replicate is a count of draws per sample, and its ROC curve the counts' running sums down
the ranking, so each replicate's figures are exactly ``metrics``' figures of the resampled data, ties included.
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


def draw_counts(size: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """[replicates, size]: how often each of ``size`` samples is drawn when ``size`` are drawn with replacement."""
    picks = rng.integers(0, size, (replicates, size), dtype=np.int32)
    counts = np.empty((replicates, size), dtype=np.int64)
    for row, drawn in zip(counts, picks):  # a row at a time: counted in cache, faster than one long bincount
        row[:] = np.bincount(drawn, minlength=size)
    return counts


class Ranking:
    """Scored samples ranked by score, highest first, ready to score many weightings of them at once: ``reals``
    and ``fakes`` are the samples of each class in rank order, and ``figures`` takes how often each is taken.

    A weighting's ROC curve has a vertex at each distinct score (tied samples move together): its false positives
    there are the reals taken down to that score, its true positives the fakes. Both are read from the running
    sums of each class's counts (one pass per class), the ranking-wide sums (AUROC, AP) at the fakes' own scores,
    and the crossings (EER, TPR@FPR) by bisection over the vertices, all rows at once and in integers."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray):
        labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        fake, ranked = labels[order], scores[order]
        self.reals, self.fakes = order[~fake], order[fake]
        group = np.r_[0, np.cumsum(np.diff(ranked) != 0)]  # each ranked sample's distinct score, 0 the highest
        ends = np.r_[np.flatnonzero(np.diff(group)), ranked.size - 1]
        self.reals_to_vertex = np.r_[0, np.cumsum(~fake)[ends]]
        """Per vertex (0: before the highest score), how many reals score at or above it; so for fakes."""
        self.fakes_to_vertex = np.r_[0, np.cumsum(fake)[ends]]
        fake_vertex = group[fake] + 1
        self.reals_through = self.reals_to_vertex[fake_vertex]
        """Per fake, the reals scoring at or above it, and (``reals_above``) strictly above it."""
        self.reals_above = self.reals_to_vertex[fake_vertex - 1]
        self.fakes_through = self.fakes_to_vertex[fake_vertex]
        self.ties = bool(ends.size < ranked.size)
        """Whether samples share a score: without, a fake's vertex is its own and no real ties with it."""

    def figures(self, real_counts: np.ndarray, fake_counts: np.ndarray) -> dict[str, np.ndarray]:
        """AUROC, AP, EER and TPR at ``FPR_TARGETS`` (``INTERVAL_METRICS``) per row of the counts (each
        [weightings, reals] and [weightings, fakes], in the order of ``reals`` and ``fakes``), as ``metrics``
        defines them; every row must take both classes."""
        false_pos, true_pos = _running(real_counts), _running(fake_counts)
        n_real, n_fake = false_pos[:, -1], true_pos[:, -1]
        through = false_pos[:, self.reals_through]
        tied = _row_dot(fake_counts, through - false_pos[:, self.reals_above]) if self.ties else 0
        hits = true_pos[:, self.fakes_through] if self.ties else true_pos[:, 1:]
        # twice the pairs (real, fake) ranked right, a tie counting half: the area under the curve, doubled
        doubled_area = 2 * (n_real * n_fake - _row_dot(fake_counts, through)) + tied
        precision = hits / np.maximum(hits + through, 1)  # at each fake's score
        curve = _Curve(false_pos, true_pos, self.reals_to_vertex, self.fakes_to_vertex)
        return {"auroc": doubled_area / (2 * n_real * n_fake),
                "ap": _row_dot(fake_counts, precision) / n_fake,
                "eer": curve.equal_error_rates(),
                **{f"tpr@{name}": curve.tpr_within(rate) for name, rate in FPR_TARGETS.items()}}


def _running(counts: np.ndarray) -> np.ndarray:
    """Running sums of each row, after a leading 0: [rows, 1 + columns]."""
    sums = np.zeros((len(counts), counts.shape[1] + 1), dtype=np.int64)
    np.cumsum(counts, axis=1, out=sums[:, 1:])
    return sums


def _row_dot(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", left, right)


@dataclass(frozen=True)
class _Curve:
    """Rows of ROC curves: the running counts of reals and fakes (``_running``) and, per vertex, how far down each
    class it reaches."""

    false_pos: np.ndarray
    true_pos: np.ndarray
    reals_to_vertex: np.ndarray
    fakes_to_vertex: np.ndarray

    def at(self, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's false and true positives at its vertex (0: (0, 0))."""
        rows = np.arange(len(vertices))
        return (self.false_pos[rows, self.reals_to_vertex[vertices]],
                self.true_pos[rows, self.fakes_to_vertex[vertices]])

    def leading(self, holds) -> np.ndarray:
        """Per row, how many of its vertices after (0, 0) satisfy ``holds`` (false positives, true positives), a
        condition that holds on a prefix of each row: bisection over all rows at once."""
        rows = len(self.false_pos)
        low, high = np.zeros(rows, dtype=np.int64), np.full(rows, self.reals_to_vertex.size - 1)
        while (open_ := low < high).any():
            middle = (low + high) // 2
            yes = holds(*self.at(middle + 1))
            low, high = np.where(open_ & yes, middle + 1, low), np.where(open_ & ~yes, middle, high)
        return low

    def tpr_within(self, rate: float) -> np.ndarray:
        """``metrics.tpr_at_fpr``: the TPR at the last vertex whose FPR (compared as a float) is at most ``rate``."""
        n_real, n_fake = self.false_pos[:, -1], self.true_pos[:, -1]
        reached = self.leading(lambda false_pos, _: false_pos / n_real <= rate)
        return self.at(reached)[1] / n_fake

    def equal_error_rates(self) -> np.ndarray:
        """``metrics.eer``: where FPR + TPR = 1 along the linearly interpolated curve (the first vertex at or past
        it found in integers: FP * fakes + TP * reals >= reals * fakes)."""
        n_real, n_fake = self.false_pos[:, -1], self.true_pos[:, -1]
        end = self.leading(lambda false_pos, true_pos: false_pos * n_fake + true_pos * n_real < n_real * n_fake) + 1
        (fp_low, tp_low), (fp_high, tp_high) = self.at(end - 1), self.at(end)
        low, high = fp_low / n_real, fp_high / n_real
        gap_low, gap_high = low + tp_low / n_fake - 1, high + tp_high / n_fake - 1
        return low - gap_low / (gap_high - gap_low) * (high - low)


@dataclass(frozen=True)
class Bootstrap:
    """How intervals are drawn: ``replicates`` resamples (0: no intervals), ``seed``, ``confidence``. Each call
    starts its own generator from ``seed``, so a table row's interval does not depend on the rows before it."""

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
        ranking, rng = Ranking(labels, scores), np.random.default_rng(self.seed)
        chunk = max(1, CHUNK_CELLS // labels.size)
        parts = []
        for start in range(0, self.replicates, chunk):
            replicates = min(chunk, self.replicates - start)
            parts.append(ranking.figures(draw_counts(ranking.reals.size, replicates, rng),
                                         draw_counts(ranking.fakes.size, replicates, rng)))
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
