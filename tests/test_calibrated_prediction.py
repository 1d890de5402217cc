"""A model carrying a calibration (written by `clipforensics calibrate`) gives calibrated p_fake, keeps the raw
score beside it, and decides labels at its operating point, or at the one asked for."""

import json
import math

import numpy as np
import pytest
from PIL import Image

import clipforensics
from clipforensics.cli import main
from clipforensics.errors import OptionError, UsageError
from clipforensics.hub.checkpoints import save_model
from clipforensics.inference.provenance import read_rows

TEMPERATURE = 2.5


@pytest.fixture
def crops(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for number in range(4):
        path = tmp_path / "crops" / f"{number}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _calibrated(tiny_detector, folder, thresholds):
    save_model(tiny_detector, folder)
    config = json.loads((folder / "config.json").read_text())
    config["calibration"] = {"temperature": TEMPERATURE, "level": "frame", "aggregate": "mean",
                             "thresholds": thresholds, "operating_point": "eer", "fitted_on": {"inputs": ["unit"]}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_p_fake_is_the_tempered_raw_score_and_the_raw_score_is_kept(tiny_detector, crops, tmp_path):
    folder = _calibrated(tiny_detector, tmp_path / "model", {"eer": 0.5})
    raw = [r.p_fake for r in clipforensics.load(folder, precision="fp32", calibrated=False).predict(crops, faces="none")]

    results = clipforensics.load(folder, precision="fp32").predict(crops, faces="none")

    for result, own in zip(results, raw):
        assert result.p_fake_raw == pytest.approx(own, abs=1e-7)
        z = math.log(own / (1 - own))
        assert result.p_fake == pytest.approx(1 / (1 + math.exp(-z / TEMPERATURE)), abs=1e-6)


def test_the_label_flips_exactly_at_the_operating_point(tiny_detector, crops, tmp_path):
    probe = _calibrated(tiny_detector, tmp_path / "probe", {"eer": 0.5})
    scores = sorted(r.p_fake for r in clipforensics.load(probe, precision="fp32").predict(crops, faces="none"))
    middle = scores[1]
    folder = _calibrated(tiny_detector, tmp_path / "model", {"eer": middle, "f1": middle + 1e-9})

    at = clipforensics.load(folder, precision="fp32").predict(crops, faces="none")
    above = clipforensics.load(folder, precision="fp32", operating_point="f1").predict(crops, faces="none")

    assert [r.label for r in at] == ["fake" if r.p_fake >= middle else "real" for r in at]
    assert sum(r.label == "fake" for r in at) == sum(r.label == "fake" for r in above) + 1
    assert {r.decided_by for r in at} == {"eer"} and {r.decided_by for r in above} == {"f1"}


def test_scores_inside_the_uncertain_band_are_labelled_uncertain(tiny_detector, crops, tmp_path):
    folder = _calibrated(tiny_detector, tmp_path / "model", {"eer": 0.5})

    results = clipforensics.load(folder, precision="fp32", uncertain=(0.0, 1.0)).predict(crops, faces="none")

    assert {r.label for r in results} == {"uncertain"}


@pytest.mark.parametrize("given", [(0.7, 0.3), (-0.1, 0.5), "0.7:0.3", "0.3-0.7", "0.1:0.2:0.3"])
def test_a_band_is_refused_alike_as_text_as_numbers_and_by_the_predictor(tiny_detector, given):
    from clipforensics.inference.calibration import Band

    with pytest.raises(OptionError, match="the uncertain band must be LOW:HIGH with 0 <= LOW <= HIGH <= 1") as refused:
        Band.parse(given) if isinstance(given, str) else clipforensics.Predictor(tiny_detector, uncertain=given)

    assert refused.value.option == "uncertain"


def test_a_band_holds_its_low_end_and_not_its_high_end():
    from clipforensics.inference.calibration import Band

    band = Band.parse("0.25:0.75")

    assert (0.25 in band, 0.5 in band, 0.75 in band, 0.1 in band) == (True, True, False, False)


def test_an_unknown_operating_point_names_the_known_ones(tiny_detector, tmp_path):
    folder = _calibrated(tiny_detector, tmp_path / "model", {"eer": 0.4, "f1": 0.6})

    with pytest.raises(UsageError, match="eer, f1"):
        clipforensics.load(folder, operating_point="fpr@1%")
    with pytest.raises(UsageError, match="not calibrated"):
        clipforensics.load(save_model(tiny_detector, tmp_path / "plain"), operating_point="eer")


def test_detect_writes_both_scores_and_what_decided_and_takes_an_operating_point(tiny_detector, crops, tmp_path,
                                                                               capsys):
    folder = _calibrated(tiny_detector, tmp_path / "model", {"eer": 0.5, "f1": 0.0})
    out = tmp_path / "rows.jsonl"

    status = main(["detect", *map(str, crops), "--model", str(folder), "--faces", "none", "--precision", "fp32",
                   "--operating-point", "f1", "--output", str(out)])

    rows = list(read_rows(out))
    assert status == 0 and all(row["label"] == "fake" and row["decided_by"] == "f1" for row in rows)
    assert all(row["p_fake_raw"] is not None and row["p_fake"] != row["p_fake_raw"] for row in rows)
    assert "calibrated (temperature 2.5); fake from p_fake 0 (f1)" in capsys.readouterr().err
    assert main(["detect", str(crops[0]), "--model", str(folder), "--operating-point", "youden"]) == 2


def test_a_tiny_temperature_gives_a_score_not_an_overflow():
    from clipforensics.inference.calibration import Calibration

    sharp = Calibration(temperature=0.001)

    assert sharp.apply(0.0) == pytest.approx(0.0, abs=1e-12) and sharp.apply(1.0) == pytest.approx(1.0, abs=1e-12)
    assert sharp.apply(0.5) == pytest.approx(0.5)
