"""`clipforensics evaluate | compare`: per-frame predictions, frame- and video-level tables overall, per dataset
and per source, reports, perturbations, and runs side by side."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from clipforensics.data.augment import gaussian_blur, jpeg
from clipforensics.cli import main
from clipforensics.evaluation.detection import Evaluation, Perturbation, Prediction, write_evaluation
from clipforensics.metrics import detection_metrics

from .conftest import expected

METRICS = ("auroc", "ap", "eer", "accuracy", "balanced_accuracy")


def _evaluate(reference: Path, data: Path, out: Path, *options: str) -> int:
    return main(["evaluate", "--model", str(reference / "gend-hf"), "--data", str(data), "--output-dir", str(out),
                 "--precision", "fp32", *options])


@pytest.fixture
def evaluated(reference, sample_faces, tmp_path) -> Path:
    out = tmp_path / "clean"
    assert _evaluate(reference, sample_faces, out) == 0
    return out


def _predictions(out: Path) -> list[dict]:
    with (out / "predictions.csv").open() as file:
        return list(csv.DictReader(file))


def _tables(out: Path) -> dict[str, dict[tuple, dict]]:
    tables = json.loads((out / "metrics.json").read_text())["tables"]
    return {level: {(row["dataset"], row["source"]): row for row in rows} for level, rows in tables.items()}


def test_evaluate_writes_predictions_metrics_and_self_contained_reports(evaluated):
    rows = _predictions(evaluated)
    metrics = json.loads((evaluated / "metrics.json").read_text())
    page = (evaluated / "report.html").read_text()
    markdown = (evaluated / "report.md").read_text()

    assert len(rows) == 32 and list(rows[0]) == ["path", "dataset", "source", "video", "label", "p_fake", "error"]
    assert all(row["error"] == "" for row in rows)
    assert metrics["name"] == "clean" and metrics["model"]["layout"] == "gend-hf" and metrics["perturbation"] is None
    assert metrics["counts"] == {"frames": 32, "scored": 32, "failed": 0, "videos": 8}
    assert page.count("<table>") == 2 and page.count('src="data:image/png;base64,') == 4
    assert 'src="http' not in page and 'src="plots' not in page
    assert "## Video level" in markdown and "## Frame level" in markdown
    assert "| CDFv2 | Celeb-synthesis | Celeb-real, YouTube-real | 8 | 4 |" in markdown
    assert all((evaluated / "plots" / f"{plot}.png").read_bytes().startswith(b"\x89PNG")
               for plot in ("roc", "pr", "histograms", "confusion"))


def test_p_fake_per_frame_matches_the_reference_code(evaluated, reference, sample_faces):
    truth = expected(reference, "gend-hf.expected.json")
    scores = {Path(row["path"]).relative_to(sample_faces).as_posix(): float(row["p_fake"])
              for row in _predictions(evaluated)}

    assert list(scores) == truth["files"]
    np.testing.assert_allclose(list(scores.values()), truth["p_fake"], atol=1e-4, rtol=0)


def test_each_fake_source_is_scored_against_the_real_sources_of_its_dataset(evaluated):
    frames = _tables(evaluated)["frame"]

    synthesis = frames[("CDFv2", "Celeb-synthesis")]
    assert synthesis["against"] == ["Celeb-real", "YouTube-real"] and (synthesis["real"], synthesis["fake"]) == (8, 4)
    for source in ("DF", "F2F", "FS", "NT"):
        row = frames[("FF", source)]
        assert row["against"] == ["real"] and (row["real"], row["fake"]) == (4, 4) and row["auroc"] is not None
    for key in (("CDFv2", "Celeb-real"), ("CDFv2", "YouTube-real"), ("FF", "real")):
        row = frames[key]
        assert (row["real"], row["fake"], row["auroc"], row["ap"], row["eer"]) == (4, 0, None, None, None)
        assert 0 <= row["accuracy"] <= 1


def _by_hand(rows: list[dict], level: str) -> list[dict]:
    """Scored frames, or videos (parent folder, mean p_fake of its frames), from predictions.csv rows."""
    items = [{**row, "label": int(row["label"]), "p_fake": float(row["p_fake"])} for row in rows if row["p_fake"]]
    if level == "frame":
        return items
    videos: dict[str, list[dict]] = {}
    for item in items:
        videos.setdefault(str(Path(item["path"]).parent), []).append(item)
    return [{**frames[0], "p_fake": float(np.mean([f["p_fake"] for f in frames]))} for frames in videos.values()]


def _members(items: list[dict], dataset: str | None, source: str | None) -> list[dict]:
    if dataset is None:
        return items
    in_dataset = [i for i in items if i["dataset"] == dataset]
    own = [i for i in in_dataset if source in (None, i["source"])]
    if source is None or any(i["label"] == 0 for i in own):
        return own
    return own + [i for i in in_dataset if i["label"] == 0]


@pytest.mark.parametrize("level", ["video", "frame"])
def test_table_values_equal_detection_metrics_computed_from_predictions_csv(evaluated, level):
    items = _by_hand(_predictions(evaluated), level)
    table = _tables(evaluated)[level]

    for (dataset, source), row in table.items():
        members = _members(items, dataset, source)
        truth = detection_metrics(np.array([m["label"] for m in members]), np.array([m["p_fake"] for m in members]))
        assert row["real"] + row["fake"] == len(members)
        assert [np.nan if row[k] is None else row[k] for k in METRICS] == pytest.approx(
            [truth[k] for k in METRICS], abs=1e-12, nan_ok=True), (dataset, source)


def test_the_video_table_counts_videos_by_parent_folder(evaluated):
    videos = _tables(evaluated)["video"]

    assert (videos[(None, None)]["real"], videos[(None, None)]["fake"]) == (3, 5)
    assert (videos[("CDFv2", None)]["real"], videos[("CDFv2", None)]["fake"]) == (2, 1)
    assert (videos[("FF", None)]["real"], videos[("FF", None)]["fake"]) == (1, 4)
    assert (videos[("CDFv2", "Celeb-synthesis")]["real"], videos[("CDFv2", "Celeb-synthesis")]["fake"]) == (2, 1)


def test_a_corrupt_frame_keeps_its_row_with_the_error_and_makes_the_exit_status_1(reference, sample_faces, tmp_path,
                                                                                   capsys):
    data = tmp_path / "faces"
    shutil.copytree(sample_faces, data)
    broken = data / "FF" / "DF" / "000_003" / "012.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")

    status = _evaluate(reference, data, tmp_path / "out")

    rows = {row["path"]: row for row in _predictions(tmp_path / "out")}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert status == 1 and len(rows) == 32
    assert rows[str(broken)]["p_fake"] == "" and str(broken) in rows[str(broken)]["error"]
    assert metrics["counts"] == {"frames": 32, "scored": 31, "failed": 1, "videos": 8}
    assert _tables(tmp_path / "out")["frame"][("FF", "DF")]["fake"] == 3
    assert "Failed frames (1)" in (tmp_path / "out" / "report.html").read_text()
    assert "31 scored, 1 failed" in capsys.readouterr().err


def test_perturbing_with_jpeg_changes_the_scores(reference, sample_faces, evaluated, tmp_path):
    status = _evaluate(reference, sample_faces, tmp_path / "jpeg", "--perturb", "jpeg:50")

    clean = [float(row["p_fake"]) for row in _predictions(evaluated)]
    degraded = _predictions(tmp_path / "jpeg")
    assert status == 0 and [row["path"] for row in degraded] == [row["path"] for row in _predictions(evaluated)]
    assert np.abs(np.array([float(row["p_fake"]) for row in degraded]) - clean).max() > 1e-3
    assert json.loads((tmp_path / "jpeg" / "metrics.json").read_text())["perturbation"] == "jpeg:50"


def test_perturbations_degrade_the_decoded_image_as_the_training_augmentations_do():
    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)

    assert str(Perturbation.parse("blur:7,1.5")) == "blur:7,1.5"
    np.testing.assert_array_equal(Perturbation.parse("jpeg:50")(image), jpeg(image, 50))
    np.testing.assert_array_equal(Perturbation.parse("blur:7,1.5")(image), gaussian_blur(image, 7, 1.5))
    smaller = Perturbation.parse("resize:50")(image)
    assert smaller.shape == image.shape and smaller.dtype == np.uint8 and not np.array_equal(smaller, image)


@pytest.mark.parametrize("spec", ["jpeg", "jpeg:0", "jpeg:50.5", "blur:6,1", "blur:7", "blur:7,0", "resize:0",
                                  "resize:150", "noise:0.1", "jpeg:high"])
def test_a_bad_perturbation_is_a_usage_error_that_shows_the_valid_forms(spec, capsys):
    with pytest.raises(ValueError, match="jpeg:Q"):
        Perturbation.parse(spec)
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--model", "m", "--data", "d", "--output-dir", "o", "--perturb", spec])

    assert exit_.value.code == 2 and "blur:K,S" in capsys.readouterr().err


def test_missing_data_is_a_usage_error(reference, tmp_path, capsys):
    assert _evaluate(reference, tmp_path / "nowhere", tmp_path / "out") == 2
    assert "nowhere: no such manifest" in capsys.readouterr().err


def _synthetic(tmp_path: Path, shift: float) -> Evaluation:
    """Dataset A (a real and a fake source, two videos each) and B (a fake source alone)."""
    predictions = [
        Prediction(str(tmp_path / dataset / source / f"v{video}" / f"{frame}.png"), dataset, source,
                   f"{dataset}/{source}/v{video}", label, max(0.0, 0.2 + 0.5 * label + 0.05 * video + shift))
        for dataset, source, label in (("A", "real", 0), ("A", "swap", 1), ("B", "swap", 1))
        for video in range(2) for frame in range(2)
    ]
    return Evaluation(predictions)


def test_a_fake_source_without_reals_in_its_dataset_gets_undefined_ranking_metrics(tmp_path):
    rows = {(row.dataset, row.source): row for row in _synthetic(tmp_path, 0.0).tables["video"]}

    assert list(rows) == [(None, None), ("A", None), ("A", "real"), ("A", "swap"), ("B", None), ("B", "swap")]
    assert rows[("A", "swap")].against == ("real",) and rows[("A", "swap")].metrics["auroc"] == 1.0
    assert rows[("B", "swap")].against == () and np.isnan(rows[("B", "swap")].metrics["auroc"])
    assert rows[("B", "swap")].metrics["accuracy"] == 1.0


def test_compare_prints_one_column_per_run_and_their_difference(tmp_path, capsys):
    write_evaluation(_synthetic(tmp_path, 0.0), tmp_path / "a", "baseline")
    write_evaluation(_synthetic(tmp_path, -0.3), tmp_path / "b", "shifted")

    status = main(["compare", str(tmp_path / "a" / "metrics.json"), str(tmp_path / "b"),
                   "--output", str(tmp_path / "compare.md")])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split() == ["dataset", "source", "metric", "baseline", "shifted", "difference"]
    assert lines[1].split() == ["all", "all", "AUROC", "100.00", "100.00", "+0.00"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [dataset, source, metric] for dataset, source in (("all", "all"), ("A", "all"), ("A", "swap"))
        for metric in ("AUROC", "AP", "EER")
    ]
    markdown = (tmp_path / "compare.md").read_text()
    assert "| dataset | source | metric | baseline | shifted | difference |" in markdown
