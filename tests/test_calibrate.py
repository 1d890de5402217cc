"""clipforensics calibrate: the temperature fit, the operating thresholds, and the command's model folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit

import clipforensics
from clipforensics.cli.main import main
from clipforensics.evaluation.calibration import (calibrated_scores, fit_calibration, fit_temperature,
                                                  operating_thresholds, threshold_name)
from clipforensics.evaluation.predictions import Prediction, load_samples, predict_samples
from clipforensics.hub.checkpoints import load_model, save_model
from clipforensics.hub.files import read_safetensors
from clipforensics.inference.calibration import Calibration
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_the_fit_recovers_a_known_temperature_from_frames(temperature):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 200_000)
    labels = (rng.random(z.size) < expit(z / temperature)).astype(int)

    assert fit_temperature(labels, expit(z)) == pytest.approx(temperature, rel=0.02)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_the_fit_recovers_a_known_temperature_from_videos(temperature):
    rng = np.random.default_rng(1)
    videos, frames = 100_000, 4
    z = rng.normal(0, 2, (videos, 1)) + rng.normal(0, 1, (videos, frames))
    video_labels = (rng.random(videos) < expit(z / temperature).mean(1)).astype(int)
    ids = np.repeat([f"data/fake/v{i}" for i in range(videos)], frames)

    fitted = fit_temperature(np.repeat(video_labels, frames), expit(z.ravel()), ids, "mean")

    assert fitted == pytest.approx(temperature, rel=0.02)


def test_calibrated_scores_are_those_of_the_calibration_record():
    raw = np.array([0.0, 1e-9, 0.2, 0.5, 0.73, 1 - 1e-9, 1.0])
    expected = [Calibration(1.7).apply(p) for p in raw]

    assert calibrated_scores(raw, 1.7) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_frames_of_a_video_with_different_labels_are_an_error():
    with pytest.raises(ValueError, match="different labels"):
        fit_temperature(np.array([0, 1, 0, 1]), np.array([0.2, 0.8, 0.3, 0.7]), ["a", "a", "b", "b"])


def test_one_class_cannot_be_calibrated():
    with pytest.raises(ValueError, match="needs real and fake"):
        fit_temperature(np.ones(4, dtype=int), np.array([0.2, 0.8, 0.3, 0.7]))


def _brute_force(labels: np.ndarray, scores: np.ndarray, target: float) -> dict[str, float]:
    """Every candidate threshold tried in ascending order; the first best kept (ties to the lowest)."""
    reals, fakes = np.sum(labels == 0), np.sum(labels == 1)
    best: dict[str, tuple[float, float]] = {}
    lowest_within = None
    for threshold in sorted(set(scores.tolist())):
        called = scores >= threshold
        fp, tp = np.sum(called & (labels == 0)), np.sum(called & (labels == 1))
        fpr = fp / reals
        for name, cost in (("eer", abs(fp * fakes - (fakes - tp) * reals)), ("f1", -2 * tp / (tp + fp + fakes))):
            if name not in best or cost < best[name][0]:
                best[name] = (cost, threshold)
        if lowest_within is None and fpr <= target:
            lowest_within = threshold
    if lowest_within is None:
        lowest_within = float(np.nextafter(scores.max(), np.inf))
    return {"eer": best["eer"][1], threshold_name(target): lowest_within, "f1": best["f1"][1]}


def test_one_class_data_is_refused_before_the_model_is_loaded_or_anything_scored(tmp_path, capsys):
    from PIL import Image

    frame = tmp_path / "D" / "real" / "v0" / "000.png"
    frame.parent.mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8)).save(frame)

    status = main(["calibrate", "--model", str(tmp_path / "no-model-here"), "--data", str(tmp_path / "D"),
                   "--output", str(tmp_path / "out")])

    assert status == 2
    assert "calibration needs real and fake frames, got 1 real and 0 fake" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", [0.01, 0.05, 0.2])
def test_thresholds_equal_a_brute_force_search(seed, target):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(5, 300))
    labels = rng.integers(0, 2, size)
    labels[:2] = (0, 1)
    scores = np.clip(labels * rng.uniform(0, 0.5) + rng.normal(0.3, 0.25, size), 0, 1)
    if seed % 2:
        scores = np.round(scores, 1)  # many ties

    assert operating_thresholds(labels, scores, target) == _brute_force(labels, scores, target)


def test_an_fpr_threshold_out_of_reach_calls_nothing_fake():
    labels, scores = np.array([0, 1, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])

    thresholds = operating_thresholds(labels, scores, 0.01)

    assert thresholds["fpr@1%"] > 0.9 and np.nextafter(0.9, 0) < thresholds["fpr@1%"] < 0.9 + 1e-12
    assert threshold_name(0.005) == "fpr@0.5%" and threshold_name(0.1) == "fpr@10%"


def test_a_fit_on_rows_reports_before_and_after_at_its_level():
    rng = np.random.default_rng(2)
    rows = []
    for video in range(60):
        label = video % 2
        z = rng.normal(4 * label - 2, 1.5, 5) * 3  # overconfident
        rows += [Prediction(f"D/{'fake' if label else 'real'}/v{video}/{frame}.png", "D", "fake" if label else "real",
                            f"v{video}", label, float(expit(value))) for frame, value in enumerate(z)]
    rows.append(Prediction("D/real/broken/0.png", "D", "real", "broken", 0, None, "cannot be read"))

    fit = fit_calibration(rows, "video", "mean", 0.05, {"inputs": ["D"]})

    report = fit.to_dict()
    assert report["counts"] == {"frames": 301, "failed": 1, "videos": 60, "real": 30, "fake": 30}
    assert report["after"]["nll"] < report["before"]["nll"]
    assert set(report["thresholds"]) == {"eer", "fpr@5%", "f1"}
    assert report["thresholds"]["fpr@5%"]["fpr"] <= 0.05
    assert fit.calibration.fitted_on["inputs"] == ["D"] and fit.calibration.fitted_on["real"] == 30
    assert any("threshold eer" in line for line in fit.summary_lines())


# --- the command --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model(ModelConfig(TINY_BACKBONE)), tmp_path / "tiny")


def _calibrate(model: Path, data: Path, output: Path, *extra: str) -> int:
    return main(["calibrate", "--model", str(model), "--data", str(data), "--output", str(output),
                 "--device", "cpu", *extra])


def test_the_command_writes_a_calibrated_model_folder(tiny_folder, sample_faces, tmp_path, capsys):
    import clipforensics

    original_config = (tiny_folder / "config.json").read_text()
    output = tmp_path / "calibrated"

    assert _calibrate(tiny_folder, sample_faces, output, "--target-fpr", "0.1") == 0

    assert {p.name for p in output.iterdir()} == {"config.json", "model.safetensors", "calibration.json",
                                                  "reliability.png"}
    assert (output / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.samefile(output / "model.safetensors", tiny_folder / "model.safetensors")
    assert (tiny_folder / "config.json").read_text() == original_config
    calibration = Calibration.from_dict(json.loads((output / "config.json").read_text())["calibration"])
    assert calibration.level == "video" and calibration.operating_point == "eer"
    assert set(calibration.thresholds) == {"eer", "fpr@10%", "f1"}
    assert calibration.fitted_on["real"] + calibration.fitted_on["fake"] == 8
    report = json.loads((output / "calibration.json").read_text())
    assert set(report["before"]) == set(report["after"]) == {"nll", "ece", "brier"}
    assert report["after"]["nll"] <= report["before"]["nll"] + 1e-12
    assert "temperature" in capsys.readouterr().out

    model, _ = load_model(output)
    reference, _ = load_model(tiny_folder)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.state_dict().items())
    assert clipforensics.load(output, device="cpu").calibration == calibration


def test_video_level_calibration_groups_frames_by_the_manifests_video_ids(tiny_folder, flat_manifest, tmp_path):
    with flat_manifest.open() as file:
        written = list(csv.DictReader(file))
    videos = [f"{row['dataset']}/{row['source']}/{row['video']}" for row in written]
    labels = np.array([int(row["label"]) for row in written])
    output = tmp_path / "calibrated"

    assert _calibrate(tiny_folder, flat_manifest, output, "--level", "video") == 0

    report = json.loads((output / "calibration.json").read_text())
    assert report["counts"] == {"frames": 32, "failed": 0, "videos": 8, "real": 3, "fake": 5}
    rows = predict_samples(clipforensics.load(tiny_folder, device="cpu"), load_samples([flat_manifest]), progress=False)
    raw = np.array([row.p_fake for row in rows])
    assert report["temperature"] == pytest.approx(fit_temperature(labels, raw, videos), rel=1e-6)


def test_a_calibrated_model_is_refitted_from_its_raw_scores(tiny_folder, sample_faces, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert _calibrate(tiny_folder, sample_faces, first, "--level", "frame") == 0
    assert _calibrate(first, sample_faces, second, "--level", "frame") == 0

    read = [json.loads((folder / "config.json").read_text())["calibration"] for folder in (first, second)]
    assert read[0]["temperature"] == pytest.approx(read[1]["temperature"], rel=1e-9)
    assert read[0]["thresholds"] == pytest.approx(read[1]["thresholds"], rel=1e-9)


def test_a_folder_that_is_not_empty_is_refused(tiny_folder, sample_faces, tmp_path, capsys):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "notes.txt").write_text("mine")

    assert _calibrate(tiny_folder, sample_faces, output) == 2

    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in output.iterdir()] == ["notes.txt"]
    assert not any(p.name.startswith(".taken") for p in tmp_path.iterdir())


def test_a_published_layout_is_written_in_the_own_format(reference, sample_faces, tmp_path):
    output = tmp_path / "gend-calibrated"

    assert _calibrate(reference / "gend-hf", sample_faces / "FF", output, "--level", "frame") == 0

    config = json.loads((output / "config.json").read_text())
    assert config["format"] == "clipforensics" and config["calibration"]["level"] == "frame"
    model, _ = load_model(reference / "gend-hf")
    saved = read_safetensors(output / "model.safetensors")
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
