"""`clipforensics evaluate | compare` and the evaluation API: per-frame predictions, frame- and video-level
tables overall, per dataset and per source, localization metrics against masks, the reports of both tasks
from one template, perturbations, and runs side by side."""

import base64
import csv
import io
import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipforensics.evaluation
from clipforensics.data.augment import gaussian_blur, jpeg
from clipforensics.cli import main
from clipforensics.errors import UsageError
from clipforensics.evaluation import (Evaluation, Example, MapPrediction, Perturbation, Prediction, evaluate,
                                      load_samples, predict_samples, write_evaluation)
from clipforensics.evaluation.explained import SHOWN
from clipforensics.inference.predictor import Predictor
from clipforensics.metrics import detection_metrics
from clipforensics.models.backbones import TINY_BACKBONE, BackboneConfig
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.transforms import Preprocessing

from .conftest import expected

METRICS = ("auroc", "ap", "eer", "accuracy", "balanced_accuracy", "tpr@0.1%", "tpr@1%", "tpr@5%", "threshold@0.1%",
           "threshold@1%", "threshold@5%", "ece", "brier", "wasserstein")
PLOTS = ("roc", "pr", "histograms", "confusion", "reliability")
SAMPLE_VIDEOS = ("CDFv2/Celeb-real/id0_0000", "CDFv2/Celeb-synthesis/id0_id1_0000", "CDFv2/YouTube-real/00000",
                 "FF/DF/000_003", "FF/F2F/000_003", "FF/FS/000_003", "FF/NT/000_003", "FF/real/000")
"""The sample faces' videos, written out, in manifest order; each has four frames."""
SAMPLE_VIDEO_OF_ROW = [video for video in SAMPLE_VIDEOS for _ in range(4)]


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
    assert [row["video"] for row in rows] == SAMPLE_VIDEO_OF_ROW
    assert metrics["name"] == "clean" and metrics["model"]["layout"] == "gend-hf" and metrics["perturbation"] is None
    assert metrics["counts"] == {"frames": 32, "scored": 32, "failed": 0, "videos": 8}
    assert page.count("<table>") == 4 and page.count('src="data:image/png;base64,') == len(PLOTS) + SHOWN
    assert 'src="http' not in page and 'src="plots' not in page
    assert "## Video level" in markdown and "## Frame level" in markdown
    assert "## Video level: operating points and calibration" in markdown
    assert "## Frame level: operating points and calibration" in markdown
    assert "| CDFv2 | Celeb-synthesis | Celeb-real, YouTube-real | 8 | 4 |" in markdown
    assert ("| dataset | source | real | fake | TPR@0.1% | thr@0.1% | TPR@1% | thr@1% | TPR@5% | thr@5% | ECE | Brier "
            "| W1 |") in markdown
    assert all((evaluated / "plots" / f"{plot}.png").read_bytes().startswith(b"\x89PNG") for plot in PLOTS)


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
        assert (row["tpr@1%"], row["threshold@1%"], row["wasserstein"]) == (None, None, None)
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["ece"] <= 1 and 0 <= row["brier"] <= 1


def _by_hand(rows: list[dict], level: str, videos: list[str]) -> list[dict]:
    """Scored frames, or videos (``videos``: each row's video id, given by the test; mean p_fake of its
    frames), from predictions.csv rows."""
    items = [{**row, "label": int(row["label"]), "p_fake": float(row["p_fake"])} for row in rows]
    if level == "frame":
        return items
    grouped: dict[str, list[dict]] = {}
    for item, video in zip(items, videos, strict=True):
        grouped.setdefault(video, []).append(item)
    return [{**frames[0], "p_fake": float(np.mean([f["p_fake"] for f in frames]))} for frames in grouped.values()]


def _members(items: list[dict], dataset: str | None, source: str | None) -> list[dict]:
    if dataset is None:
        return items
    in_dataset = [i for i in items if i["dataset"] == dataset]
    own = [i for i in in_dataset if source in (None, i["source"])]
    if source is None or any(i["label"] == 0 for i in own):
        return own
    return own + [i for i in in_dataset if i["label"] == 0]


def _assert_table_is_detection_metrics_of(table: dict[tuple, dict], items: list[dict]) -> None:
    for (dataset, source), row in table.items():
        members = _members(items, dataset, source)
        truth = detection_metrics(np.array([m["label"] for m in members]), np.array([m["p_fake"] for m in members]))
        assert row["real"] + row["fake"] == len(members)
        assert [np.nan if row[k] is None else row[k] for k in METRICS] == pytest.approx(  # JSON has no NaN or inf
            [truth[k] if np.isfinite(truth[k]) else np.nan for k in METRICS], abs=1e-12, nan_ok=True), (dataset, source)


@pytest.mark.parametrize("level", ["video", "frame"])
def test_table_values_equal_detection_metrics_computed_from_predictions_csv(evaluated, level):
    items = _by_hand(_predictions(evaluated), level, SAMPLE_VIDEO_OF_ROW)

    _assert_table_is_detection_metrics_of(_tables(evaluated)[level], items)


def test_videos_are_the_manifests_video_ids_even_when_their_frames_share_one_folder(reference, flat_manifest,
                                                                                      tmp_path):
    with flat_manifest.open() as file:
        written = list(csv.DictReader(file))
    videos = [f"{row['dataset']}/{row['source']}/{row['video']}" for row in written]
    out = tmp_path / "flat"

    assert _evaluate(reference, flat_manifest, out) == 0

    rows = _predictions(out)
    assert [row["video"] for row in rows] == videos
    assert json.loads((out / "metrics.json").read_text())["counts"] == {"frames": 32, "scored": 32, "failed": 0,
                                                                        "videos": 8}
    tables = _tables(out)
    assert (tables["video"][(None, None)]["real"], tables["video"][(None, None)]["fake"]) == (3, 5)
    for level in ("video", "frame"):
        _assert_table_is_detection_metrics_of(tables[level], _by_hand(rows, level, videos))


def test_a_video_whose_frames_disagree_on_the_label_is_a_usage_error_before_any_frame_is_scored(tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,dataset,source,video\na.png,real,D,mixed,v1\nb.png,fake,D,mixed,v1\n")

    assert main(["evaluate", "--model", str(tmp_path / "no-model"), "--data", str(manifest), "--output-dir",
                 str(tmp_path / "out")]) == 2

    assert "video 'D/mixed/v1' has frames with different labels" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_video_table_counts_the_videos_of_the_layout(evaluated):
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
    with pytest.raises(UsageError, match="jpeg:Q"):
        Perturbation.parse(spec)
    status = main(["evaluate", "--model", "m", "--data", "d", "--output-dir", "o", "--perturb", spec])

    assert status == 2 and "blur:K,S" in capsys.readouterr().err


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
    return Evaluation("detection", predictions)


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
    rows = [line.split() for line in lines[1:]]
    assert status == 0
    assert lines[0].split() == ["dataset", "source", "metric", "better", "baseline", "shifted", "difference"]
    assert lines[1].split() == ["all", "all", "AUROC", "higher", *["100.00", "[100.00,", "100.00]"] * 2, "+0.00"]
    assert [row[:3] for row in rows if row[2] in ("AUROC", "AP", "EER")] == [
        [dataset, source, metric] for dataset, source in (("all", "all"), ("A", "all"), ("A", "swap"))
        for metric in ("AUROC", "AP", "EER")
    ]
    both_classes = (("all", "all"), ("A", "all"), ("A", "swap"))
    assert [row[:3] for row in rows] == [
        [dataset, source, metric]
        for dataset, source in (("all", "all"), ("A", "all"), ("A", "real"), ("A", "swap"), ("B", "all"), ("B", "swap"))
        for metric in (("AUROC", "AP", "EER", "TPR@0.1%", "TPR@1%", "TPR@5%", "ECE", "Brier", "W1")
                       if (dataset, source) in both_classes else ("ECE", "Brier"))
    ]
    # A's reals score 0.2 and 0.25 (baseline), 0 (shifted): Brier 100 (0.2^2 + 0.25^2) / 2 -> 0, in %
    assert ["A", "real", "Brier", "lower", "5.12", "0.00", "-5.12"] in rows
    markdown = (tmp_path / "compare.md").read_text()
    assert "| dataset | source | metric | better | baseline | shifted | difference |" in markdown


def test_predict_samples_scores_face_crops_exactly_as_predict_does(reference, sample_faces):
    from clipforensics import load

    detector = load(reference / "gend-hf", device="cpu", precision="fp32", batch_size=4)
    samples = load_samples([sample_faces])[:6]

    rows = predict_samples(detector, samples)

    results = detector.predict([sample.path for sample in samples], faces="none", progress=False)
    assert [row.path for row in rows] == [sample.path for sample in samples]
    assert [row.p_fake for row in rows] == pytest.approx([result.p_fake for result in results], abs=1e-6)


def test_missing_data_or_an_unknown_task_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="nowhere"):
        load_samples([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no frames found"):
        load_samples([tmp_path / "empty"])
    with pytest.raises(UsageError, match="detection, localization"):
        Evaluation("segmentation", [])


MAPS_64 = BackboneConfig("tiny-64", 64, 2, 256, 16, 64)
"""A tower whose decoder maps are 64 x 64 (a 4 x 4 grid)."""


class HalfMaps:
    """A stand-in localizer with 64 x 64 maps: every map calls the left half of the image manipulated."""

    batch_size = 2
    provenance = {"source": "half-maps"}
    preprocessing = Preprocessing(mode="squash", interpolation="bilinear")
    config = ModelConfig(MAPS_64, head=None, decoder="conv-4", layer=1)

    def forward_batch(self, pixels: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        probabilities = torch.full((len(pixels), 64, 64), 0.1)
        probabilities[:, :, :32] = 0.9
        return probabilities.mean(dim=(1, 2)), probabilities if maps else None


def _synthetic_dolos(root: Path, fakes: int = 3, reals: int = 2) -> Path:
    """Dolos layout, random 96 x 80 images; each fake's (inverted) mask marks its left half inpainted."""
    rng = np.random.default_rng(0)
    untouched = np.full((80, 96), 255, np.uint8)
    untouched[:, :48] = 0
    for number in range(fakes):
        for folder, picture in (("images", rng.integers(0, 256, (80, 96, 3), np.uint8)), ("masks", untouched)):
            target = root / "fake" / "lama" / folder / "test" / f"{number}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture).save(target)
    for number in range(reals):
        (root / "real" / "test").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), np.uint8)).save(root / "real" / "test" / f"{number}.png")
    return root


def test_localization_scores_maps_at_the_models_map_size_and_keeps_a_row_per_image(tmp_path):
    data = _synthetic_dolos(tmp_path / "dolos")
    broken = data / "fake" / "lama" / "images" / "test" / "0.png"
    broken.write_bytes(b"\x89PNG broken")
    samples = load_samples([data], "test")

    evaluation = evaluate(HalfMaps(), samples, "localization")

    rows = evaluation.rows
    assert [row.path for row in rows] == [sample.path for sample in samples] and len(rows) == 5
    assert all(isinstance(row, MapPrediction) for row in rows)
    failed, = evaluation.failed
    assert failed.path == str(broken) and failed.score is None and str(broken) in failed.error
    masked = [row for row in rows if row.masked]
    assert len(masked) == 2 and all(row.label == 1 for row in masked)
    assert [(row.iou, row.f1, row.best_f1, row.pixel_ap) for row in masked] == [(1.0, 1.0, 1.0, 1.0)] * 2
    assert all(row.score == pytest.approx(0.5) for row in rows if row.error is None)
    assert [path for path, _ in evaluation.examples] == [row.path for row in masked]
    example = evaluation.examples[0][1]
    assert example.image.shape == (64, 64, 3) and example.truth.shape == example.probabilities.shape == (64, 64)
    assert evaluation.to_dict("run")["counts"] == {"images": 5, "scored": 4, "failed": 1, "masked": 2}
    assert evaluation.summary_lines(tmp_path)[0].startswith("5 images: 1 failed; IoU 1.0000, F1 1.0000")


def test_localization_needs_a_model_with_a_decoder(tmp_path):
    detector = HalfMaps()
    detector.config = ModelConfig(MAPS_64)

    with pytest.raises(UsageError, match="no decoder"):
        predict_samples(detector, load_samples([_synthetic_dolos(tmp_path)], "test"), "localization")


def test_summary_lines_show_ten_failures_and_count_the_rest(tmp_path):
    rows = [Prediction(f"/d/A/real/v/{i}.png", "A", "real", "A/real/v", 0, None, f"cannot read {i}")
            for i in range(12)]

    lines = Evaluation("detection", rows).summary_lines(tmp_path)

    assert lines[0] == f"12 frames: 0 scored, 12 failed; 0 videos -> {tmp_path / 'report.html'}"
    assert lines[1:11] == [f"  failed: cannot read {i}" for i in range(10)]
    assert lines[11] == f"  ... and 2 more in {tmp_path / 'predictions.csv'}"


class _Page(HTMLParser):
    """Headings, tables and images of a page, and whether every opened element was closed."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str):
        super().__init__()
        self.open: list[str] = []
        self.headings: list[str] = []
        self.tables: list[str | None] = []
        self.images: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table":
            self.tables.append(attributes.get("class"))
        if tag == "img":
            self.images.append(attributes["src"])
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"

    def handle_data(self, data):
        if self.open and self.open[-1] == "h2":
            self.headings.append(data)


def test_detection_and_localization_reports_come_from_one_template(tmp_path):
    odd = "/data/<b>odd</b>/0.png"
    failed = Prediction(odd, "A", "real", "A/real/x", 0, None, "bad <png>")
    detection = Evaluation("detection", [*_synthetic(tmp_path, 0.0).rows, failed])
    localization = evaluate(HalfMaps(), load_samples([_synthetic_dolos(tmp_path / "dolos")], "test"), "localization")
    localization = Evaluation("localization", [*localization.rows, MapPrediction(odd, "dolos", "real", 0, None,
                                                                                 error="bad <png>")])

    write_evaluation(detection, tmp_path / "detection", "det")
    write_evaluation(localization, tmp_path / "localization", "loc")

    pages = {task: (tmp_path / task / "report.html").read_text() for task in ("detection", "localization")}
    parsed = {task: _Page(page) for task, page in pages.items()}
    assert parsed["detection"].headings == [
        "Video level", "Video level: operating points and calibration", "Frame level",
        "Frame level: operating points and calibration", "Plots", "Failed frames (1)"]
    assert parsed["localization"].headings == ["Image and pixel metrics", "Examples", "Failed images (1)"]
    assert parsed["detection"].tables == ["summary", None, None, None, None]
    assert parsed["localization"].tables == ["summary", None]
    assert len(parsed["detection"].images) == len(PLOTS) and len(parsed["localization"].images) == 1
    for page, html in zip(parsed.values(), pages.values()):
        assert not page.open and all(src.startswith("data:image/png;base64,") for src in page.images)
        assert "<b>odd</b>" not in html and "&lt;b&gt;odd&lt;/b&gt;" in html and "bad &lt;png&gt;" in html
        assert html.splitlines()[0] == "<!doctype html>" and "<p class=note>" in html
    markdown = {task: (tmp_path / task / "report.md").read_text() for task in ("detection", "localization")}
    assert "| dataset | source | against | real | fake | AUROC |" in markdown["detection"]
    assert "| dataset | source | real | fake | masked | IoU@0.5 |" in markdown["localization"]
    assert "## Failed images (1)\n\n- `/data/<b>odd</b>/0.png`: bad <png>" in markdown["localization"]
    assert "![" in markdown["localization"] and "(plots/examples.png)" in markdown["localization"]
    templates = Path(clipforensics.evaluation.__file__).parent / "templates"
    assert sorted(path.name for path in templates.iterdir()) == ["case.html.j2", "page.html.j2", "report.html.j2",
                                                                 "report.md.j2"]  # the case report shares the page


class ExplainsCounted(Predictor):
    """A predictor that counts the faces it is asked to explain, call by call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.explained: list[int] = []

    def explain_batch(self, pixels: torch.Tensor,
                      method: str = "rollout") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.explained.append(len(pixels))
        return super().explain_batch(pixels, method)


def test_the_detection_report_explains_the_frames_called_most_fake_in_one_pass_over_them_alone(tmp_path):
    rng = np.random.default_rng(0)
    for source in ("real", "swap"):
        for video in range(2):
            for frame in range(4):
                path = tmp_path / "data" / "A" / source / f"v{video}" / f"{source}-{video}-{frame}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (96, 96, 3), np.uint8)).save(path)
    torch.manual_seed(0)
    predictor = ExplainsCounted(create_model(ModelConfig(TINY_BACKBONE)).eval(), precision="fp32")

    evaluation = evaluate(predictor, load_samples([tmp_path / "data"]))
    write_evaluation(evaluation, tmp_path / "out", "run")

    html, markdown = ((tmp_path / "out" / name).read_text() for name in ("report.html", "report.md"))
    page = _Page(html)
    shown = [row for label in (1, 0) for row in sorted((row for row in evaluation.rows if row.label == label),
                                                       key=lambda row: -row.p_fake)[: SHOWN // 2]]
    captions = [f"{Path(row.path).name}: {'fake' if row.label else 'real'}, p_fake {row.p_fake:.3f}; the map: why "
                f"{'fake' if row.p_fake >= 0.5 else 'real'}" for row in shown]
    assert predictor.explained == [SHOWN] and len(evaluation.rows) == 16
    assert page.headings[-1] == "Example faces" and len(page.images) == len(PLOTS) + SHOWN
    assert [html.index(f"<figcaption>{caption}</figcaption>") for caption in captions] == sorted(
        html.index(f"<figcaption>{caption}</figcaption>") for caption in captions)
    for number, source in enumerate(page.images[len(PLOTS):]):
        picture = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert picture.size == (224, 224) and picture.mode == "RGB"
        assert f"(plots/example-{number}.png) {captions[number]}" in markdown
        assert (tmp_path / "out" / "plots" / f"example-{number}.png").read_bytes().startswith(b"\x89PNG")


def test_predictions_csv_keeps_each_tasks_columns_with_nan_as_empty(tmp_path):
    localization = Evaluation("localization", [
        MapPrediction("/d/real/0.png", "d", "real", 0, 0.25),
        MapPrediction("/d/fake/0.png", "d", "lama", 1, 0.75, 0.5, 0.6, 0.7, 0.8,
                      example=Example(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), bool), np.zeros((4, 4)))),
    ])

    write_evaluation(localization, tmp_path, "loc")

    assert (tmp_path / "predictions.csv").read_text().splitlines() == [
        "path,dataset,source,label,score,iou,f1,best_f1,pixel_ap,error",
        "/d/real/0.png,d,real,0,0.25,,,,,",
        "/d/fake/0.png,d,lama,1,0.75,0.5,0.6,0.7,0.8,",
    ]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert list(metrics) == ["name", "task", "model", "perturbation", "counts", "table"]
    assert metrics["table"][0]["iou"] == 0.5 and not math.isnan(metrics["table"][0]["auroc"])


def _dolos(sample_faces: Path, root: Path) -> Path:
    """A Dolos-layout dataset from the sample faces: the left half of each fake marked inpainted."""
    for number, face in enumerate(sorted((sample_faces / "FF" / "DF").rglob("*.png"))[:3]):
        target = root / "fake" / "lama" / "images" / "test" / f"{number}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(face, target)
        untouched = np.full((256, 256), 255, np.uint8)
        untouched[:, :128] = 0
        mask = root / "fake" / "lama" / "masks" / "test" / f"{number}.png"
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(untouched).save(mask)
    for number, face in enumerate(sorted((sample_faces / "FF" / "real").rglob("*.png"))[:2]):
        (root / "real" / "test").mkdir(parents=True, exist_ok=True)
        shutil.copy(face, root / "real" / "test" / f"{number}.png")
    return root


def test_evaluate_localization_scores_maps_against_masks_per_generator(reference, sample_faces, tmp_path):
    data = _dolos(sample_faces, tmp_path / "celebahq")
    out = tmp_path / "eval"

    status = main(["evaluate", "--task", "localization", "--model", str(reference / "declip-conv-4.pth"), "--data",
                   str(data), "--split", "test", "--output-dir", str(out), "--precision", "fp32"])

    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "localization" and metrics["counts"] == {"images": 5, "scored": 5, "failed": 0,
                                                                      "masked": 3}
    rows = {(r["dataset"], r["source"]): r for r in metrics["table"]}
    lama = rows[("celebahq", "lama")]
    assert lama["masked"] == 3 and lama["against"] == ["real"] and (lama["real"], lama["fake"]) == (2, 3)
    assert all(0 <= lama[key] <= 1 for key in ("iou", "f1", "best_f1", "pixel_ap", "ap"))
    assert rows[("celebahq", "real")]["masked"] == 0 and rows[("celebahq", "real")]["iou"] is None
    predictions = (out / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "path,dataset,source,label,score,iou,f1,best_f1,pixel_ap,error" and len(predictions) == 6
    assert (out / "plots" / "examples.png").is_file() and "IoU@0.5" in (out / "report.md").read_text()
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_histograms_colour_reals_and_fakes_alike_and_fit_their_bins_to_crowded_scores(tmp_path):
    from clipforensics.colours import FAKE, REAL, for_matplotlib
    from clipforensics.evaluation.plots import histogram_figure

    rng = np.random.default_rng(0)
    predictions = [
        Prediction(str(tmp_path / "A" / source / f"v{frame}" / "0.png"), "A", source, f"A/{source}/v{frame}", label,
                   float(0.5 + 0.004 * label + rng.normal(0, 0.002)))
        for source, label in (("real", 0), ("swap", 1), ("face2face", 1)) for frame in range(40)
    ]
    figure = histogram_figure(Evaluation("detection", predictions))

    [ax] = [ax for ax in figure.axes if ax.get_visible()]
    outlines = {patch.get_label().split(" ")[0]: patch for patch in ax.patches}
    assert {name: outline.get_edgecolor()[:3] for name, outline in outlines.items()} == {
        "real": for_matplotlib(REAL), "swap": for_matplotlib(FAKE), "face2face": for_matplotlib(FAKE)}
    assert outlines["swap"].get_linestyle() != outlines["face2face"].get_linestyle()
    scores = [p.p_fake for p in predictions]
    left, right = ax.get_xlim()
    assert min(scores) - 0.01 < left and right < max(scores) + 0.01  # not the whole 0 to 1: the bins are fitted
    assert all(len({tuple(v) for v in outline.get_xy()}) > 10 for outline in outlines.values())  # many steps


def test_a_report_names_the_run_and_the_model_and_tabulates_the_training_config(tmp_path):
    model = {"source": "/work/runs/detector/best", "layout": "clipforensics", "epochs_trained": 2,
             "val/video_mAP": 0.83, "train_config": {"trainer": {"epochs": 3, "precision": "fp32"},
                                                     "data": {"train": ["/d/train.csv"], "fakes": "sbi"}}}
    evaluation = Evaluation("detection", _synthetic(tmp_path, 0.0).rows, model)

    write_evaluation(evaluation, tmp_path / "out", "best")

    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# best: detection evaluation of detector/best\n")
    assert "## Training configuration\n\n| setting | value |" in markdown
    assert "| trainer.epochs | 3 |" in markdown and "| data.train | /d/train.csv |" in markdown
    assert "- **epochs_trained**: 2" in markdown and "{" not in markdown


def test_the_video_rule_is_recorded_people_by_default_and_a_video_of_crops_scores_the_same_by_either(
        evaluated, reference, sample_faces, tmp_path, capsys):
    from clipforensics.cli.evaluate import default_video_score

    largest = tmp_path / "largest"
    assert _evaluate(reference, sample_faces, largest, "--video-score", "largest") == 0

    people = json.loads((evaluated / "metrics.json").read_text())
    assert people["video_score"] == "people" and "--video-score largest: one person each" in capsys.readouterr().err
    assert json.loads((largest / "metrics.json").read_text())["video_score"] == "largest"
    assert _tables(largest)["video"] == _tables(evaluated)["video"]
    assert "video score" in (largest / "report.md").read_text()
    assert default_video_score("gend-clip-l14") == "largest" and default_video_score(str(reference)) == "people"
