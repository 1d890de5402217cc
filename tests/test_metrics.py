"""Detection metrics agree with scikit-learn, scipy, the reference EER and plain-loop definitions; videos are
the frames that share a video id; localization metrics follow DeCLIP's conventions on hand-computed masks."""

import math
import warnings

import numpy as np
import pytest

from clipforensics import metrics

sk = pytest.importorskip("sklearn.metrics")

SEEDS = range(5)


def _random_case(seed: int, size: int = 200, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.25), 0, 1)
    return labels, np.round(scores, 1) if ties else scores


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auroc_and_ap_equal_scikit_learn_on_random_scores(seed, ties):
    labels, scores = _random_case(seed, ties=ties)

    assert metrics.auroc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert metrics.average_precision(labels, scores) == pytest.approx(
        sk.average_precision_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_eer_equals_the_reference_root_of_one_minus_fpr_minus_interpolated_tpr(seed, ties):
    interpolate = pytest.importorskip("scipy.interpolate")
    optimize = pytest.importorskip("scipy.optimize")
    labels, scores = _random_case(seed, ties=ties)
    fpr, tpr, _ = sk.roc_curve(labels, scores, pos_label=1)

    reference = optimize.brentq(lambda x: 1.0 - x - interpolate.interp1d(fpr, tpr)(x), 0.0, 1.0)

    assert metrics.eer(labels, scores) == pytest.approx(reference, abs=1e-9)


def test_eer_is_zero_when_the_classes_are_perfectly_separated():
    assert metrics.eer(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0


def test_eer_is_one_when_every_fake_scores_below_every_real():
    assert metrics.eer(np.array([0, 0, 1, 1]), np.array([0.8, 0.9, 0.1, 0.2])) == 1.0


def test_eer_interpolates_across_a_tie_between_a_real_and_a_fake():
    # ROC vertices (0,0) (0,.5) (.5,1) (1,1): the segment (0,.5)-(.5,1) meets fpr + tpr = 1 at fpr .25,
    # where FNR = 1 - .75 = .25 too.
    assert metrics.eer(np.array([0, 0, 1, 1]), np.array([0.2, 0.5, 0.5, 0.9])) == pytest.approx(0.25)


def test_eer_on_a_vertex_of_the_roc_curve():
    # Vertices (0,0) (0,.5) (.5,.5) (.5,1) (1,1): (.5,.5) lies on fpr + tpr = 1.
    assert metrics.eer(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])) == pytest.approx(0.5)


def test_accuracy_and_balanced_accuracy_on_a_hand_case():
    labels = np.array([0, 0, 0, 1])
    scores = np.array([0.2, 0.7, 0.4, 0.9])  # called fake: no, yes, no, yes

    assert metrics.accuracy(labels, scores) == pytest.approx(3 / 4)
    assert metrics.balanced_accuracy(labels, scores) == pytest.approx((2 / 3 + 1) / 2)
    assert metrics.balanced_accuracy(labels, scores) == pytest.approx(sk.balanced_accuracy_score(labels, scores >= 0.5))


def test_a_score_equal_to_the_threshold_is_called_fake():
    assert metrics.accuracy(np.array([1, 0]), np.array([0.5, 0.2])) == 1.0
    assert metrics.accuracy(np.array([1, 0]), np.array([0.5, 0.2]), threshold=0.6) == 0.5


def test_one_class_gives_nan_ranking_metrics_without_warning_or_exception():
    labels, scores = np.ones(4, dtype=int), np.array([0.2, 0.4, 0.6, 0.8])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = metrics.detection_metrics(labels, scores)

    assert set(result) == {"auroc", "ap", "eer", "accuracy", "balanced_accuracy", "tpr@0.1%", "tpr@1%", "tpr@5%",
                           "threshold@0.1%", "threshold@1%", "threshold@5%", "ece", "brier", "wasserstein"}
    assert all(math.isnan(result[name]) for name in ("auroc", "ap", "eer", "tpr@1%", "threshold@1%", "wasserstein"))
    assert result["accuracy"] == 0.5
    assert result["balanced_accuracy"] == 0.5
    assert result["brier"] == pytest.approx(np.mean((scores - 1) ** 2))
    assert result["ece"] == pytest.approx(np.mean(1 - scores))  # one sample per bin: each gap is 1 - score
    assert math.isnan(metrics.auroc(np.zeros(3, dtype=int), np.array([0.1, 0.5, 0.9])))


def test_detection_metrics_gathers_each_metric():
    labels, scores = _random_case(0)

    result = metrics.detection_metrics(labels, scores)

    assert result == {
        "auroc": metrics.auroc(labels, scores),
        "ap": metrics.average_precision(labels, scores),
        "eer": metrics.eer(labels, scores),
        "accuracy": metrics.accuracy(labels, scores),
        "balanced_accuracy": metrics.balanced_accuracy(labels, scores),
        "tpr@0.1%": metrics.tpr_at_fpr(labels, scores, 0.001)[0],
        "tpr@1%": metrics.tpr_at_fpr(labels, scores, 0.01)[0],
        "tpr@5%": metrics.tpr_at_fpr(labels, scores, 0.05)[0],
        "threshold@0.1%": metrics.tpr_at_fpr(labels, scores, 0.001)[1],
        "threshold@1%": metrics.tpr_at_fpr(labels, scores, 0.01)[1],
        "threshold@5%": metrics.tpr_at_fpr(labels, scores, 0.05)[1],
        "ece": metrics.expected_calibration_error(labels, scores),
        "brier": metrics.brier(labels, scores),
        "wasserstein": metrics.wasserstein(labels, scores),
    }
    assert list(result)[:5] == ["auroc", "ap", "eer", "accuracy", "balanced_accuracy"]


def _tpr_at_fpr_by_brute_force(labels: np.ndarray, scores: np.ndarray, target: float) -> tuple[float, float]:
    """Every distinct score tried as the threshold (fake at score >= t); the lowest whose FPR <= target."""
    best = (0.0, math.inf)
    for threshold in sorted(set(scores.tolist()), reverse=True):
        called = scores >= threshold
        if np.sum(called & (labels == 0)) / np.sum(labels == 0) <= target:
            best = (np.sum(called & (labels == 1)) / np.sum(labels == 1), threshold)
    return best


@pytest.mark.parametrize("target", [0.001, 0.01, 0.05, 0.1, 0.3])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_tpr_at_fpr_equals_scikit_learns_roc_curve_and_a_brute_force_sweep(seed, ties, target):
    labels, scores = _random_case(seed, size=2000, ties=ties)
    fpr, tpr, thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)
    reachable = fpr <= target

    result = metrics.tpr_at_fpr(labels, scores, target)

    assert result == pytest.approx((tpr[reachable].max(), thresholds[reachable].min()), abs=1e-12)
    assert result == pytest.approx(_tpr_at_fpr_by_brute_force(labels, scores, target), abs=1e-12)


def test_tpr_at_fpr_on_a_hand_case_with_a_tie_across_the_classes():
    # 5 reals, 4 fakes; at threshold .7 the tie calls a real and a fake: FPR 1/5, TPR 3/4.
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1])

    assert metrics.tpr_at_fpr(labels, scores, 0.1) == (0.5, 0.8)
    assert metrics.tpr_at_fpr(labels, scores, 0.2) == (0.75, 0.7)
    assert metrics.tpr_at_fpr(labels, scores, 1.0) == (1.0, 0.1)


def test_tpr_at_fpr_is_zero_at_an_infinite_threshold_when_a_real_scores_highest():
    labels, scores = np.array([0, 1, 0, 1]), np.array([0.9, 0.8, 0.1, 0.2])

    assert metrics.tpr_at_fpr(labels, scores, 0.01) == (0.0, math.inf)
    assert sk.roc_curve(labels, scores)[0][1] > 0.01  # scikit-learn's first finite threshold is past the target


def test_tpr_at_fpr_with_every_score_equal_calls_all_or_nothing():
    labels, scores = np.array([0, 1, 0, 1]), np.full(4, 0.5)

    assert metrics.tpr_at_fpr(labels, scores, 0.5) == (0.0, math.inf)
    assert metrics.tpr_at_fpr(labels, scores, 1.0) == (1.0, 0.5)


def test_tpr_at_fpr_is_nan_with_one_class_and_refuses_a_target_outside_0_1():
    assert all(math.isnan(value) for value in metrics.tpr_at_fpr(np.ones(3, dtype=int), np.array([.1, .5, .9]), .01))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.tpr_at_fpr(np.array([0, 1]), np.array([0.1, 0.9]), 5)


def _ece_by_loop(labels: np.ndarray, scores: np.ndarray, bins: int = 15) -> float:
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, s in enumerate(scores) if low <= s < high or (b == bins - 1 and s == 1.0)]
        if members:
            total += len(members) / len(scores) * abs(np.mean(labels[members]) - np.mean(scores[members]))
    return total


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_calibration_metrics_equal_scikit_learn_and_a_plain_loop(seed, ties):
    labels, scores = _random_case(seed, ties=ties)
    inside = np.clip(scores, 1e-6, 1 - 1e-6)  # away from the log-loss clip, where scikit-learn's own eps differs

    assert metrics.expected_calibration_error(labels, scores) == pytest.approx(_ece_by_loop(labels, scores), abs=1e-12)
    assert metrics.brier(labels, scores) == pytest.approx(sk.brier_score_loss(labels, scores), abs=1e-12)
    assert metrics.log_loss(labels, inside) == pytest.approx(sk.log_loss(labels, inside, labels=[0, 1]), abs=1e-12)


def test_ece_bins_are_half_open_but_the_last_is_closed_at_one():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.0, 1 / 15, 14 / 15, 1.0])  # bins 0, 1, 14 and (closed) 14

    binned = metrics.reliability(labels, scores)

    assert binned.counts.tolist() == [1, 1] + [0] * 12 + [2]
    assert binned.scores[[0, 1, 14]] == pytest.approx([0.0, 1 / 15, (14 / 15 + 1) / 2])
    assert binned.labels[[0, 1, 14]] == pytest.approx([1.0, 0.0, 0.5])
    assert np.isnan(binned.scores[2:14]).all() and np.isnan(binned.labels[2:14]).all()
    assert binned.edges == pytest.approx(np.linspace(0, 1, 16))
    # |1 - 0| + |0 - 1/15| + 2 |0.5 - 29/30|, over 4 samples
    assert metrics.expected_calibration_error(labels, scores) == pytest.approx((1 + 1 / 15 + 2 * (29 / 30 - 0.5)) / 4)


def test_calibration_of_confident_scores_at_exactly_0_and_1():
    labels, right = np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 0.0, 1.0])
    wrong = 1 - right

    assert metrics.expected_calibration_error(labels, right) == 0.0 and metrics.brier(labels, right) == 0.0
    assert metrics.expected_calibration_error(labels, wrong) == 1.0 and metrics.brier(labels, wrong) == 1.0
    assert metrics.log_loss(labels, right) == pytest.approx(-math.log(1 - 1e-7))
    assert metrics.log_loss(labels, wrong) == pytest.approx(-math.log(1e-7))


def test_calibration_with_every_score_equal_or_one_class():
    labels = np.array([0, 1, 1, 1])

    assert metrics.expected_calibration_error(labels, np.full(4, 0.75)) == 0.0
    assert metrics.expected_calibration_error(labels, np.full(4, 0.5)) == pytest.approx(0.25)
    assert metrics.brier(labels, np.full(4, 0.5)) == 0.25
    assert metrics.log_loss(labels, np.full(4, 0.5)) == pytest.approx(math.log(2))
    assert metrics.expected_calibration_error(np.zeros(3, dtype=int), np.array([0.1, 0.1, 0.1])) == pytest.approx(0.1)


def test_calibration_metrics_refuse_scores_outside_0_1():
    with pytest.raises(ValueError, match="logits"):
        metrics.brier(np.array([0, 1]), np.array([-2.0, 3.0]))
    with pytest.raises(ValueError, match="logits"):
        metrics.expected_calibration_error(np.array([0, 1]), np.array([0.5, 1.5]))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_equals_scipy_between_the_real_and_fake_scores(seed, ties):
    stats = pytest.importorskip("scipy.stats")
    labels, scores = _random_case(seed, ties=ties)

    assert metrics.wasserstein(labels, scores) == pytest.approx(
        stats.wasserstein_distance(scores[labels == 0], scores[labels == 1]), abs=1e-12)


def test_wasserstein_on_hand_cases_and_nan_with_one_class():
    assert metrics.wasserstein(np.array([0, 0, 1, 1]), np.array([0.0, 0.0, 1.0, 1.0])) == 1.0
    assert metrics.wasserstein(np.array([0, 1, 0, 1]), np.full(4, 0.3)) == 0.0
    assert metrics.wasserstein(np.array([0, 1, 1]), np.array([0.2, 0.4, 0.6])) == pytest.approx(0.3)
    assert math.isnan(metrics.wasserstein(np.zeros(3, dtype=int), np.array([0.1, 0.5, 0.9])))


@pytest.mark.parametrize(("labels", "scores"), [([0, 2], [0.1, 0.2]), ([0, 1, 1], [0.1, 0.2]), ([], [])])
def test_labels_other_than_0_and_1_mismatched_lengths_and_empty_input_are_errors(labels, scores):
    with pytest.raises(ValueError):
        metrics.auroc(np.array(labels), np.array(scores))


def test_videos_group_frames_by_their_ids_in_order_of_first_appearance():
    ids = ["ds/fake/b", "ds/real/a", "ds/fake/b", "ds/real/a", "ds/fake/c"]

    videos = metrics.Videos(ids, np.array([1, 0, 1, 0, 1]))

    assert videos.ids == ["ds/fake/b", "ds/real/a", "ds/fake/c"]
    assert videos.labels.tolist() == [1, 0, 1]
    assert videos.counts.tolist() == [2, 2, 1] and videos.first.tolist() == [0, 1, 4]
    assert videos.scores(np.array([0.8, 0.1, 0.4, 0.3, 0.9])) == pytest.approx([0.6, 0.2, 0.9])


@pytest.mark.parametrize(("how", "expected"), [("mean", 0.4), ("median", 0.2), ("max", 0.9)])
def test_video_score_is_the_mean_of_frames_by_default_and_median_or_max_on_request(how, expected):
    videos = metrics.Videos(["v", "w", "v", "v"], np.ones(4, dtype=int))

    assert videos.scores(np.array([0.1, 0.5, 0.2, 0.9]), how=how) == pytest.approx([expected, 0.5])
    assert videos.scores(np.array([0.1, 0.5, 0.2, 0.9]), how=how)[0] == pytest.approx(
        metrics.aggregate([0.1, 0.2, 0.9], how))


def test_a_video_whose_frames_disagree_on_the_label_is_an_error_naming_it():
    with pytest.raises(ValueError, match="ds/mixed/v7"):
        metrics.Videos(["ds/mixed/v7", "ds/mixed/v7"], np.array([0, 1]))


@pytest.mark.parametrize(("videos", "labels", "scores"), [(["a", "a"], [0], [0.5, 0.5]), (["a", "a"], [0, 0], [0.5])])
def test_grouping_needs_one_video_id_label_and_score_per_frame(videos, labels, scores):
    with pytest.raises(ValueError, match="one per frame"):
        metrics.Videos(videos, np.array(labels)).scores(np.array(scores))


def test_an_unknown_aggregate_is_an_error_naming_the_valid_ones():
    with pytest.raises(ValueError, match="mean, median, max"):
        metrics.Videos(["a"], np.array([1])).scores(np.array([0.5]), how="sum")


HALF = np.zeros((4, 4), dtype=bool)
HALF[:, :2] = True
EMPTY = np.zeros((4, 4), dtype=bool)
FULL = np.ones((4, 4), dtype=bool)
EVERY_PIXEL = {"erode": 1, "dilate": 1}


def test_iou_of_perfect_half_overlapping_and_disjoint_masks():
    quarter = np.zeros((4, 4), dtype=bool)
    quarter[:, :1] = True

    assert metrics.iou(HALF, HALF) == 1.0
    assert metrics.iou(quarter, HALF) == 0.5
    assert metrics.iou(~HALF, HALF) == 0.0


def test_iou_of_two_empty_masks_is_one_and_of_a_false_alarm_on_empty_truth_zero():
    assert metrics.iou(EMPTY, EMPTY) == 1.0
    assert metrics.iou(HALF, EMPTY) == 0.0


def test_iou_wants_boolean_masks_of_one_shape():
    with pytest.raises(TypeError, match="threshold"):
        metrics.iou(HALF.astype(float), HALF)
    with pytest.raises(ValueError, match="shape"):
        metrics.iou(HALF, np.zeros((4, 5), dtype=bool))


def test_f1_of_perfect_half_and_empty_predictions():
    probs = HALF * 0.9
    one_column = np.zeros((4, 4))
    one_column[:, 0] = 0.9  # tp 4, fn 4, fp 0: F1 = 8 / 12

    assert metrics.f1(probs, HALF, **EVERY_PIXEL) == 1.0
    assert metrics.f1(one_column, HALF, **EVERY_PIXEL) == pytest.approx(2 / 3)
    assert metrics.f1(np.zeros((4, 4)), HALF, **EVERY_PIXEL) == 0.0


def test_f1_on_empty_truth_is_one_without_false_alarms_and_zero_with_them():
    assert metrics.f1(np.full((4, 4), 0.2), EMPTY) == 1.0
    assert metrics.f1(HALF * 0.9, EMPTY) == 0.0


def test_f1_calls_fake_only_above_the_threshold():
    assert metrics.f1(np.full((4, 4), 0.5), FULL, **EVERY_PIXEL) == 0.0
    assert metrics.f1(np.full((4, 4), 0.5), FULL, threshold=0.4, **EVERY_PIXEL) == 1.0


def test_f1_ignores_the_band_around_the_mask_boundary_as_declip_does():
    truth = np.zeros((32, 32), dtype=bool)
    truth[:, :16] = True
    probs = np.zeros((32, 32))
    probs[:, :13] = 0.9  # misses columns 13-15, within 7 pixels of the boundary: ignored by the 15-pixel erosion

    assert metrics.f1(probs, truth) == 1.0
    assert metrics.f1(probs, truth, **EVERY_PIXEL) == pytest.approx(2 * 13 / (2 * 13 + 3))


def test_best_f1_finds_the_threshold_that_separates_the_mask():
    probs = np.where(HALF, 0.4, 0.3)  # nothing above 0.5, but > 0.3 is exactly the mask

    assert metrics.f1(probs, HALF, **EVERY_PIXEL) == 0.0
    assert metrics.best_f1(probs, HALF, **EVERY_PIXEL) == 1.0


def test_best_f1_never_falls_below_f1_at_the_fixed_threshold():
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 40), dtype=bool)
    truth[10:30, 5:25] = True
    probs = np.clip(rng.normal(0.3 + 0.4 * truth, 0.2), 0, 1)

    assert metrics.best_f1(probs, truth) >= metrics.f1(probs, truth)
    assert metrics.best_f1(np.full((40, 40), 0.7), truth) == metrics.f1(np.full((40, 40), 0.7), truth)


def test_best_f1_matches_a_brute_force_sweep():
    rng = np.random.default_rng(1)
    truth = rng.random((8, 8)) < 0.4
    probs = np.round(rng.random((8, 8)), 1)
    values = np.unique(probs)

    sweep = [metrics.f1(probs, truth, threshold=value, **EVERY_PIXEL) for value in [*values[:-1], 0.5]]

    assert metrics.best_f1(probs, truth, **EVERY_PIXEL) == pytest.approx(max(sweep))


def test_pixel_ap_equals_scikit_learn_over_the_pixels():
    rng = np.random.default_rng(2)
    truth = rng.random((16, 16)) < 0.3
    probs = rng.random((16, 16))

    assert metrics.pixel_ap(probs, truth) == pytest.approx(sk.average_precision_score(truth.ravel(), probs.ravel()))


def test_pixel_ap_of_a_perfect_map_is_one_and_of_empty_truth_nan():
    assert metrics.pixel_ap(HALF * 0.9, HALF) == 1.0
    assert metrics.pixel_ap(np.full((4, 4), 0.3), FULL) == 1.0
    assert math.isnan(metrics.pixel_ap(HALF * 0.9, EMPTY))
