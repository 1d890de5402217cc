"""Figures with their uncertainty: bootstrap intervals of AUROC, AP, EER and TPR@FPR (stratified by label, fixed
seed), and the warnings when a figure rests on too few samples, in evaluate and calibrate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from clipforensics.cli import main
from clipforensics.evaluation import Evaluation, Prediction, write_evaluation
from clipforensics.evaluation.calibration import fit_calibration
from clipforensics.metrics import detection_metrics
from clipforensics.uncertainty import INTERVAL_METRICS, Bootstrap, Ranking, draw_counts, reals_needed, sample_sizes


def separated(reals: int, fakes: int, seed: int, shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores: reals ~ N(0, 1), fakes ~ N(shift, 1), squashed into (0, 1); AUROC is
    Phi(shift / sqrt(2)) (0.760 for a shift of 1)."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(reals, int), np.ones(fakes, int)]
    return labels, norm.cdf(rng.normal(shift * labels, 1.0))


@pytest.mark.parametrize("weighting", ["bootstrap", "any"])
def test_each_weighting_scores_as_the_metrics_of_its_repeated_samples_ties_included(weighting):
    labels, scores = separated(23, 17, seed=0)
    scores = np.round(scores, 1)  # many ties, within and across the classes
    ranking, rng = Ranking(labels, scores), np.random.default_rng(1)
    if weighting == "bootstrap":
        real_counts, fake_counts = (draw_counts(members.size, 25, rng) for members in (ranking.reals, ranking.fakes))
    else:  # 0 to 3 times each, the first of each class at least once
        real_counts, fake_counts = (rng.integers(0, 4, (25, size)) for size in (ranking.reals.size, ranking.fakes.size))
        real_counts[:, 0] += 1
        fake_counts[:, 0] += 1

    figures = ranking.figures(real_counts, fake_counts)

    for row in range(25):
        taken = np.r_[np.repeat(ranking.reals, real_counts[row]), np.repeat(ranking.fakes, fake_counts[row])]
        expected = detection_metrics(labels[taken], scores[taken])
        assert {metric: figures[metric][row] for metric in INTERVAL_METRICS} == pytest.approx(
            {metric: expected[metric] for metric in INTERVAL_METRICS}, abs=1e-12)


def test_a_replicate_draws_as_many_of_a_class_as_the_class_has():
    counts = draw_counts(7, 50, np.random.default_rng(0))

    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all() and (counts >= 0).all()


def test_intervals_contain_the_point_estimate_and_are_reproducible_with_the_seed():
    labels, scores = separated(200, 150, seed=3)
    point = detection_metrics(labels, scores)

    intervals = Bootstrap(200, seed=7).intervals(labels, scores)

    assert set(intervals) == set(INTERVAL_METRICS)
    assert all(low <= point[metric] <= high for metric, (low, high) in intervals.items())
    assert Bootstrap(200, seed=7).intervals(labels, scores) == intervals
    assert Bootstrap(200, seed=8).intervals(labels, scores) != intervals


def test_intervals_shrink_as_the_data_grows():
    def width(size: int) -> float:
        low, high = Bootstrap(200).intervals(*separated(size, size, seed=0))["auroc"]
        return high - low

    assert width(4000) < width(400) / 2 < width(40) / 4


def test_the_95_percent_auroc_interval_covers_the_true_auroc_in_at_least_90_percent_of_50_seeds():
    true_auroc = norm.cdf(1 / math.sqrt(2))
    covered = [low <= true_auroc <= high for low, high in
               (Bootstrap(300, seed=seed).intervals(*separated(60, 60, seed=seed))["auroc"] for seed in range(50))]

    assert sum(covered) >= 45


def test_one_class_gives_undefined_intervals_and_no_replicates_gives_none():
    labels, scores = np.zeros(5, int), np.linspace(0, 1, 5)

    assert all(math.isnan(end) for ends in Bootstrap(50).intervals(labels, scores).values() for end in ends)
    assert Bootstrap(0).intervals(*separated(5, 5, seed=0)) == {}


@pytest.mark.parametrize("fpr, needed", [(0.001, 3000), (0.01, 300), (0.05, 60), (0.003, 1000)])
def test_a_tpr_at_fpr_x_needs_3_over_x_reals(fpr, needed):
    assert reals_needed(fpr) == needed
    short, enough = (sample_sizes(real, 10_000, {"TPR": fpr})[0] for real in (needed - 1, needed))
    assert not short.enough and enough.enough


def test_ece_needs_15_samples_a_bin_on_average():
    short, enough = (sample_sizes(10, total, {})[0] for total in (224, 225))

    assert (short.figure, short.needs) == ("ECE", 225) and not short.enough and enough.enough


def _videos(reals: int, fakes: int) -> list[Prediction]:
    """One frame per video, the fakes scored higher."""
    labels, scores = separated(reals, fakes, seed=0, shift=2.0)
    sources = np.where(labels == 1, "fake", "real")
    return [Prediction(f"D/{source}/{index}/0.png", "D", source, f"v{index}", int(label), float(score))
            for index, (source, label, score) in enumerate(zip(sources, labels, scores))]


def test_evaluate_warns_at_the_documented_counts_once_per_level_and_figure():
    """225 videos of one frame: 60 or 59 real. Rows go all, D, D/real (reals alone), D/fake (against D/real)."""
    enough_at_5 = Evaluation("detection", _videos(60, 165), bootstrap=Bootstrap(0)).warnings
    short_at_5 = Evaluation("detection", _videos(59, 166), bootstrap=Bootstrap(0)).warnings

    assert enough_at_5 == [
        f"{level} level, {line}" for level in ("frame", "video") for line in (
            f"all: TPR@0.1% rests on 60 real {level}s; it needs at least 3000 (3 / 0.1%) to mean anything (2 more rows "
            "fall short)",
            f"all: TPR@1% rests on 60 real {level}s; it needs at least 300 (3 / 1%) to mean anything (2 more rows fall "
            "short)",
            f"D/real: ECE rests on 60 {level}s; it needs at least 225 (15 a bin over 15 bins) to mean anything")]
    assert [line for line in short_at_5 if "TPR@5%" in line] == [
        f"{level} level, all: TPR@5% rests on 59 real {level}s; it needs at least 60 (3 / 5%) to mean anything (2 more "
        "rows fall short)" for level in ("frame", "video")]
    assert not any("all: ECE" in line for line in enough_at_5 + short_at_5)
    assert any("all: ECE rests on 224" in line for line in Evaluation("detection", _videos(60, 164),
                                                                      bootstrap=Bootstrap(0)).warnings)


def test_metrics_json_and_the_reports_carry_the_intervals_the_seed_and_the_warnings(tmp_path):
    evaluation = Evaluation("detection", _videos(40, 30), bootstrap=Bootstrap(100, seed=3))

    write_evaluation(evaluation, tmp_path, "run")

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    overall = metrics["tables"]["video"][0]
    assert metrics["bootstrap"] == {"replicates": 100, "seed": 3, "confidence": 0.95, "stratified": "by label"}
    assert list(overall["intervals"]) == list(INTERVAL_METRICS)
    assert overall["intervals"]["auroc"][0] <= overall["auroc"] <= overall["intervals"]["auroc"][1]
    assert any("TPR@1% rests on 40 real videos" in line for line in metrics["warnings"])
    low, high = overall["intervals"]["auroc"]
    cell = f"{100 * overall['auroc']:.2f} [{100 * low:.2f}, {100 * high:.2f}]"
    assert f"<td class=num>{cell}</td>" in (tmp_path / "report.html").read_text()
    assert f"| {cell} |" in (tmp_path / "report.md").read_text()
    assert "TPR@1% rests on 40 real videos" in (tmp_path / "report.html").read_text()


def test_calibration_json_records_the_counts_and_warns_on_6_real_and_6_fake_videos():
    fit = fit_calibration(_videos(6, 6), level="video", target_fpr=0.01)

    record = fit.to_dict()
    assert record["sample_sizes"] == {"fpr@1%": {"real": 6, "needs": 300}, "ECE": {"samples": 12, "needs": 225}}
    assert record["warnings"] == fit.warnings == [
        "fpr@1% rests on 6 real videos; it needs at least 300 (3 / 1%) to mean anything",
        "ECE rests on 12 videos; it needs at least 225 (15 a bin over 15 bins) to mean anything"]
    assert fit_calibration(_videos(300, 6), level="video", target_fpr=0.01).warnings == []


def test_evaluate_draws_as_many_replicates_as_asked(reference, sample_faces, tmp_path, capsys):
    assert main(["evaluate", "--model", str(reference / "gend-hf"), "--data", str(sample_faces), "--output-dir",
                 str(tmp_path), "--precision", "fp32", "--bootstrap", "20"]) == 0

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["bootstrap"]["replicates"] == 20 and "intervals" in metrics["tables"]["video"][0]
    assert "warning: video level, all: TPR@0.1% rests on 3 real videos" in capsys.readouterr().err


def test_no_replicates_draw_no_intervals():
    record = Evaluation("detection", _videos(10, 10), bootstrap=Bootstrap(0)).to_dict("run")

    assert record["bootstrap"] is None and "intervals" not in record["tables"]["video"][0]


def test_1000_replicates_over_10000_frames_drawn_in_chunks_give_narrow_intervals_around_the_point():
    labels, scores = separated(5000, 5000, seed=0)
    low, high = Bootstrap(1000).intervals(labels, scores)["auroc"]

    assert low < detection_metrics(labels, scores)["auroc"] < high and high - low < 0.03
