"""Detection metrics (AUROC, AP, EER, accuracy, TPR at fixed FPR, calibration), frame-to-video aggregation by
the frames' video ids, and mask localization metrics.

Detection inputs are 1-D arrays: ``labels`` with 1 = fake and 0 = real, ``scores`` = p_fake. A metric that
compares the classes (AUROC, AP, EER, TPR@FPR, Wasserstein distance) needs both: with one class it is NaN,
never an exception, so a per-source table with a real-only source still prints. Calibration metrics (ECE,
Brier, log loss) are defined on either class alone and need scores in [0, 1]. Localization inputs are 2-D
maps of one image: a probability map and a boolean ground-truth mask (True = manipulated pixel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

AGGREGATES = ("mean", "median", "max")
FPR_TARGETS = {"0.1%": 0.001, "1%": 0.01, "5%": 0.05}
"""The false positive rates ``detection_metrics`` reports the TPR at, by the name in its keys."""
CALIBRATION_BINS = 15
LOG_LOSS_EPS = 1e-7
PIXEL_METRICS = ("iou", "f1", "best_f1", "pixel_ap")


def _binary(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as booleans (True = fake) and scores as float64, after checking they pair up."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels and scores must be 1-D of one length, got {labels.shape} and {scores.shape}")
    if labels.size == 0:
        raise ValueError("no samples to score")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got values {np.unique(labels).tolist()}")
    return labels.astype(bool), scores


def _probabilities(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_binary``, and the scores checked to be probabilities (calibration metrics bin and log them)."""
    labels, scores = _binary(labels, scores)
    if not ((scores >= 0) & (scores <= 1)).all():
        raise ValueError(f"calibration metrics need scores in [0, 1] (p_fake, not logits), got values from "
                         f"{np.nanmin(scores)} to {np.nanmax(scores)}")
    return labels, scores


def _both_classes(labels: np.ndarray) -> bool:
    return bool(labels.any() and not labels.all())


def cumulative_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positives when predicting fake at score >= each distinct score, highest first."""
    order = np.argsort(-scores, kind="stable")
    ranked, positive = scores[order], labels[order]
    group_ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    return np.cumsum(~positive)[group_ends], np.cumsum(positive)[group_ends]


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve's vertices (fpr, tpr), from (0, 0) to (1, 1); both classes must be present."""
    false_pos, true_pos = cumulative_counts(labels, scores)
    return np.r_[0, false_pos] / false_pos[-1], np.r_[0, true_pos] / true_pos[-1]


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """sum_k (R_k - R_{k-1}) P_k over distinct thresholds (scikit-learn's definition); needs a positive."""
    false_pos, true_pos = cumulative_counts(labels, scores)
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(np.r_[0, recall]) * true_pos / (true_pos + false_pos)))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids, ties as a diagonal step); NaN when only one class is present."""
    labels, scores = _binary(labels, scores)
    if not _both_classes(labels):
        return float("nan")
    fpr, tpr = _roc(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of the fake class, as scikit-learn's ``average_precision_score``; NaN when only one
    class is present."""
    labels, scores = _binary(labels, scores)
    return _average_precision(labels, scores) if _both_classes(labels) else float("nan")


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: the FPR x at which the ROC curve, linearly interpolated between its vertices,
    meets FNR = 1 - TPR, i.e. the root of 1 - x - TPR(x) on [0, 1].

    This is the reference code's ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)`` (yermandy
    deepfake-detection and GenD ``src/metrics.py``), solved exactly on the segment that crosses
    FPR + TPR = 1 (a vertical segment gives its FPR, as brentq converges there). NaN when only one class
    is present, as GenD returns (seed 1's code returned 1.0).
    """
    labels, scores = _binary(labels, scores)
    if not _both_classes(labels):
        return float("nan")
    fpr, tpr = _roc(labels, scores)
    gap = fpr + tpr - 1  # non-decreasing along the curve, from -1 at (0, 0) to 1 at (1, 1)
    end = int(np.argmax(gap >= 0))
    share = -gap[end - 1] / (gap[end] - gap[end - 1])
    return float(fpr[end - 1] + share * (fpr[end] - fpr[end - 1]))


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of samples labelled right, a sample being called fake when its score is >= ``threshold``
    (the detector's rule; the reference's argmax calls an exact 0.5 real)."""
    labels, scores = _binary(labels, scores)
    return float(np.mean((scores >= threshold) == labels))


def balanced_accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of the per-class recalls (TPR and TNR) at ``threshold``, over the classes present, as
    scikit-learn's ``balanced_accuracy_score``."""
    labels, scores = _binary(labels, scores)
    called_fake = scores >= threshold
    recalls = [np.mean(called_fake[labels == value] == value) for value in (False, True) if (labels == value).any()]
    return float(np.mean(recalls))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> tuple[float, float]:
    """(TPR, threshold) at the lowest threshold whose false positive rate is <= ``fpr``, a sample being
    called fake when its score is >= the threshold.

    The candidate thresholds are the distinct scores (as scikit-learn's ``roc_curve``, so tied scores move
    together), plus +inf (nothing called fake, TPR 0), which is the answer when even the highest score's
    FPR exceeds ``fpr``. The TPR is then the highest reachable at FPR <= ``fpr``:
    max {TPR(t) : FPR(t) <= fpr}, with t the smallest such threshold. NaN for both with one class.
    """
    labels, scores = _binary(labels, scores)
    if not 0 <= fpr <= 1:
        raise ValueError(f"the target false positive rate must be in [0, 1], got {fpr}")
    if not _both_classes(labels):
        return float("nan"), float("nan")
    false_pos, true_pos = cumulative_counts(labels, scores)
    reached = int(np.searchsorted(false_pos / false_pos[-1], fpr, side="right"))  # thresholds with FPR <= fpr
    if reached == 0:
        return 0.0, float("inf")
    thresholds = np.unique(scores)[::-1]  # the distinct scores, highest first, as cumulative_counts ranks them
    return float(true_pos[reached - 1] / true_pos[-1]), float(thresholds[reached - 1])


class Reliability(NamedTuple):
    """Per bin of p_fake: how many samples fell in it, their mean score and their mean label (the share
    that is fake); both means are NaN in an empty bin. ``edges`` has one more entry than the bins."""

    edges: np.ndarray
    counts: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def reliability(labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> Reliability:
    """The reliability diagram's points: ``bins`` equal-width bins of p_fake over [0, 1], each
    [edge_b, edge_b+1) but the last, which is closed ([14/15, 1] with 15 bins, so p_fake = 1 counts)."""
    labels, scores = _probabilities(labels, scores)
    if bins < 1:
        raise ValueError(f"need at least one bin, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.minimum(np.searchsorted(edges, scores, side="right") - 1, bins - 1)
    counts = np.bincount(which, minlength=bins)
    filled = np.maximum(counts, 1)
    empty = counts == 0
    mean_scores = np.where(empty, np.nan, np.bincount(which, scores, minlength=bins) / filled)
    mean_labels = np.where(empty, np.nan, np.bincount(which, labels, minlength=bins) / filled)
    return Reliability(edges, counts, mean_scores, mean_labels)


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE = sum_b (n_b / N) |mean label in b - mean p_fake in b| over ``reliability``'s bins (15 equal-width
    bins over [0, 1], the last closed), the binned estimator of Guo et al. 2017 ("On Calibration of Modern
    Neural Networks") applied to p_fake. Defined with one class too."""
    binned = reliability(labels, scores, bins)
    filled = binned.counts > 0
    gaps = np.abs(binned.labels[filled] - binned.scores[filled])
    return float(np.sum(binned.counts[filled] * gaps) / binned.counts.sum())


def brier(labels: np.ndarray, scores: np.ndarray) -> float:
    """Brier score: mean of (p_fake - label)^2 (Brier 1950; scikit-learn's ``brier_score_loss``)."""
    labels, scores = _probabilities(labels, scores)
    return float(np.mean((scores - labels) ** 2))


def log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    """Negative log-likelihood of the labels: -mean(y log p + (1 - y) log(1 - p)), p = p_fake clipped to
    [1e-7, 1 - 1e-7] so a confident mistake costs about 16.1, not infinity. Scikit-learn's ``log_loss`` for
    scores inside that range (it clips to machine epsilon instead)."""
    labels, scores = _probabilities(labels, scores)
    clipped = np.clip(scores, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(np.where(labels, np.log(clipped), np.log1p(-clipped))))


def wasserstein(labels: np.ndarray, scores: np.ndarray) -> float:
    """Wasserstein-1 distance between the real and the fake score distributions: the integral of
    |F_real(x) - F_fake(x)| over x, F the empirical CDFs (``scipy.stats.wasserstein_distance`` of the two
    sets of scores, as GenD logs it); how far apart the detector pushes the classes. NaN with one class."""
    labels, scores = _binary(labels, scores)
    if not _both_classes(labels):
        return float("nan")
    real, fake = np.sort(scores[~labels]), np.sort(scores[labels])
    points = np.sort(scores)
    cdf_gap = (np.searchsorted(real, points[:-1], side="right") / real.size
               - np.searchsorted(fake, points[:-1], side="right") / fake.size)
    return float(np.sum(np.abs(cdf_gap) * np.diff(points)))


def detection_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Every detection metric of one set of scores: ``auroc``, ``ap``, ``eer``, ``accuracy`` and
    ``balanced_accuracy`` (both at 0.5); ``tpr@0.1%``, ``tpr@1%``, ``tpr@5%`` and the thresholds that reach
    them (``threshold@0.1%``, ...; ``tpr_at_fpr``); ``ece``, ``brier`` and ``wasserstein``."""
    operating = {name: tpr_at_fpr(labels, scores, fpr) for name, fpr in FPR_TARGETS.items()}
    return {
        "auroc": auroc(labels, scores),
        "ap": average_precision(labels, scores),
        "eer": eer(labels, scores),
        "accuracy": accuracy(labels, scores),
        "balanced_accuracy": balanced_accuracy(labels, scores),
        **{f"tpr@{name}": tpr for name, (tpr, _) in operating.items()},
        **{f"threshold@{name}": threshold for name, (_, threshold) in operating.items()},
        "ece": expected_calibration_error(labels, scores),
        "brier": brier(labels, scores),
        "wasserstein": wasserstein(labels, scores),
    }


def aggregate(scores: list[float], how: str = "mean") -> float:
    """A video's p_fake from its frames' (mean as in the papers; median or max optional)."""
    _check_aggregate(how)
    return float(getattr(np, how)(scores))


def _check_aggregate(how: str) -> None:
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {how!r}")


class Videos:
    """Frames grouped by their video ids (``Sample.video``), videos in order of first appearance: ``ids``,
    ``labels`` (a video's label is its frames', which must agree), ``counts`` (frames per video) and ``first``
    (the index of each video's first frame). Grouped once, scored by ``scores`` as often as needed (the
    calibration fit scores the same videos at many temperatures)."""

    def __init__(self, videos: Sequence[str], labels: np.ndarray):
        videos, labels = np.asarray(videos, dtype=object), np.asarray(labels)
        if videos.ndim != 1 or videos.shape != labels.shape:
            raise ValueError(f"got {videos.size} video ids for {labels.size} labels; one per frame")
        if videos.size == 0:
            raise ValueError("no frames to group into videos")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"labels must be 0 (real) or 1 (fake), got values {np.unique(labels).tolist()}")
        ids, first, inverse = np.unique(videos, return_index=True, return_inverse=True)
        appearance = np.argsort(first, kind="stable")
        rank = np.empty_like(appearance)
        rank[appearance] = np.arange(appearance.size)
        group = rank[inverse.reshape(-1)]
        self.ids: list[str] = ids[appearance].tolist()
        self.first: np.ndarray = first[appearance]
        self.counts: np.ndarray = np.bincount(group, minlength=len(self.ids))
        self._order = np.argsort(group, kind="stable")
        self._starts = np.r_[0, np.cumsum(self.counts)[:-1]]
        fakes = np.add.reduceat(labels[self._order].astype(np.int64), self._starts)
        mixed = np.flatnonzero((fakes > 0) & (fakes < self.counts))
        if mixed.size:
            raise ValueError(f"video {self.ids[mixed[0]]!r} has frames with different labels (real and fake); a "
                             "video has one label: correct the labels or the video ids of its frames")
        self.labels: np.ndarray = (fakes > 0).astype(np.int64)

    def scores(self, frame_scores: np.ndarray, how: str = "mean") -> np.ndarray:
        """Each video's score: the ``how`` (mean, median or max, as ``aggregate``) of its frames' scores."""
        _check_aggregate(how)
        frame_scores = np.asarray(frame_scores, dtype=np.float64)
        if frame_scores.shape != self._order.shape:
            raise ValueError(f"got {frame_scores.size} scores for {self._order.size} frames; one per frame")
        ordered = frame_scores[self._order]
        if how == "mean":
            return np.add.reduceat(ordered, self._starts) / self.counts
        if how == "max":
            return np.maximum.reduceat(ordered, self._starts)
        return np.array([np.median(part) for part in np.split(ordered, self._starts[1:])])


def iou(pred_mask: np.ndarray, true_mask: np.ndarray) -> float:
    """Intersection over union of two boolean masks (threshold a probability map first, e.g. ``probs > 0.5``
    as DeCLIP does). Two empty masks agree perfectly: 1.0; an empty truth with any prediction: 0.0.
    A fraction in [0, 1] (DeCLIP prints it as a percentage)."""
    pred_mask, true_mask = _masks(pred_mask, true_mask)
    union = np.logical_or(pred_mask, true_mask).sum()
    return float(np.logical_and(pred_mask, true_mask).sum() / union) if union else 1.0


def f1(
    prob_map: np.ndarray, true_mask: np.ndarray, threshold: float = 0.5, erode: int = 15, dilate: int = 11
) -> float:
    """Pixel F1 of ``prob_map > threshold`` against ``true_mask``, over the pixels outside the boundary band.

    As DeCLIP (after TruFor), a pixel counts as fake when the mask eroded by an ``erode`` x ``erode``
    square keeps it, as real when the mask dilated by a ``dilate`` x ``dilate`` square misses it, and not
    at all otherwise; ``erode=1, dilate=1`` counts every pixel. With nothing to find and nothing found
    (no true fake and no false alarm) F1 is 1.0.
    """
    scores, fake = _scored_pixels(prob_map, true_mask, erode, dilate)
    return _f1_above(scores, fake, threshold)


def best_f1(
    prob_map: np.ndarray, true_mask: np.ndarray, threshold: float = 0.5, erode: int = 15, dilate: int = 11
) -> float:
    """The image's best pixel F1 over thresholds (``f1``'s pixels and conventions), as DeCLIP reports it.

    The candidates are calling fake every pixel above each distinct score but the highest, and the fixed
    ``threshold``; so a constant map (no candidate of the first kind) gives ``f1`` at ``threshold``, where
    DeCLIP's code gives NaN.
    """
    scores, fake = _scored_pixels(prob_map, true_mask, erode, dilate)
    order = np.argsort(scores, kind="stable")
    ranked, positive = scores[order], fake[order]
    cut = np.flatnonzero(np.diff(ranked))  # call fake the pixels after each cut (score > ranked[cut])
    false_neg, true_neg = np.cumsum(positive)[cut], np.cumsum(~positive)[cut]
    swept = _f1(positive.sum() - false_neg, (~positive).sum() - true_neg, false_neg)
    return max(_f1_above(scores, fake, threshold), float(swept.max(initial=0.0)))


def pixel_ap(prob_map: np.ndarray, true_mask: np.ndarray) -> float:
    """Average precision of the image's pixels ranked by probability (every pixel counts); NaN when the
    truth has no fake pixel (nothing to find), 1.0 when every pixel is fake."""
    scores, true_mask = _map_and_mask(prob_map, true_mask)
    if not true_mask.any():
        return float("nan")
    return _average_precision(true_mask.reshape(-1), scores.reshape(-1))


def pixel_scores(probabilities: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU and F1 at 0.5, best F1 and pixel AP of one probability map against a boolean mask."""
    called = probabilities > 0.5
    return {"iou": iou(called, truth), "f1": f1(probabilities, truth), "best_f1": best_f1(probabilities, truth),
            "pixel_ap": pixel_ap(probabilities, truth)}


def map_score(probabilities):
    """Per image, the score of a probability map (DeCLIP's image score, a localizer's p_fake): the mean
    over its pixels. ``probabilities``: [B, ...] (numpy or torch); returns [B]."""
    return probabilities.reshape(len(probabilities), -1).mean(1)


def _masks(pred_mask: np.ndarray, true_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred_mask, true_mask = _boolean(pred_mask, "predicted"), _boolean(true_mask, "true")
    if pred_mask.shape != true_mask.shape:
        raise ValueError(f"masks differ in shape: {pred_mask.shape} and {true_mask.shape}")
    return pred_mask, true_mask


def _map_and_mask(prob_map: np.ndarray, true_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, true_mask = np.asarray(prob_map, dtype=np.float64), _boolean(true_mask, "true")
    if scores.shape != true_mask.shape:
        raise ValueError(f"probability map {scores.shape} and mask {true_mask.shape} differ in shape")
    return scores, true_mask


def _boolean(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"the {name} mask must be boolean, got {mask.dtype}; threshold it (e.g. mask > 0.5)")
    return mask


def _scored_pixels(
    prob_map: np.ndarray, true_mask: np.ndarray, erode: int, dilate: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scores of the pixels that count (outside the boundary band), and which of those are fake."""
    scores, true_mask = _map_and_mask(prob_map, true_mask)
    if true_mask.ndim != 2:
        raise ValueError(f"need one image's 2-D map and mask, got shape {true_mask.shape}")
    surely_fake = _square_filter(true_mask, erode, np.all, True)
    surely_real = ~_square_filter(true_mask, dilate, np.any, False)
    kept = surely_fake | surely_real
    return scores[kept], surely_fake[kept]


def _square_filter(mask: np.ndarray, size: int, reduce: Callable, outside: bool) -> np.ndarray:
    """``reduce`` (np.all: erosion, np.any: dilation) over each pixel's size x size neighbourhood, pixels
    beyond the border taken as ``outside``."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"filter size must be a positive odd number, got {size}")
    padded = np.pad(mask, size // 2, constant_values=outside)
    rows = reduce(np.lib.stride_tricks.sliding_window_view(padded, size, axis=0), axis=-1)
    return reduce(np.lib.stride_tricks.sliding_window_view(rows, size, axis=1), axis=-1)


def _f1_above(scores: np.ndarray, fake: np.ndarray, threshold: float) -> float:
    called = scores > threshold
    true_pos = np.sum(called & fake)
    return float(_f1(true_pos, np.sum(called) - true_pos, np.sum(fake) - true_pos))


def _f1(true_pos: np.ndarray, false_pos: np.ndarray, false_neg: np.ndarray) -> np.ndarray:
    """2 TP / (2 TP + FP + FN), elementwise; 1.0 where there is nothing to find and nothing found."""
    hits_and_errors = 2 * true_pos + false_pos + false_neg
    return np.where(hits_and_errors > 0, 2 * true_pos / np.maximum(hits_and_errors, 1), 1.0)
