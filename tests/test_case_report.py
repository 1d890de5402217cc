"""`detect --report case.html`: one self-contained HTML file, a summary row and a section per input (its picture or
its p_fake chart and key frames, its people) and the run's provenance, opened in a real browser (Debian's chromium,
driven by Playwright) with no network; a screenshot goes to tests/output/case-report.png."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from clipforensics.cli import main
from clipforensics.hub.checkpoints import save_model

from .videos import moving_frames, write_video

CHROMIUM = shutil.which("chromium")
OUTPUT = Path(__file__).resolve().parent / "output"


@pytest.fixture(scope="module")
def case(tiny_detector_module, tmp_path_factory) -> tuple[Path, dict[str, Path], int]:
    """A report of a photo, a video, a cat (no face) and a damaged file; the inputs and detect's status."""
    folder = tmp_path_factory.mktemp("case")
    inputs = folder / "inputs"
    inputs.mkdir()
    Image.fromarray(data.astronaut()).save(inputs / "astronaut.png")
    write_video(inputs / "walk.mp4", moving_frames(12))
    Image.fromarray(data.chelsea()).save(inputs / "cat.png")
    (inputs / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n not the rest")
    model = save_model(tiny_detector_module, folder / "model")
    report = folder / "case.html"
    status = main(["detect", str(inputs), "--model", str(model), "--frames", "4", "--precision", "fp32",
                   "--output", str(folder / "rows.jsonl"), "--report", str(report)])
    return report, {path.name: path for path in inputs.iterdir()}, status


@pytest.fixture(scope="module")
def tiny_detector_module():
    import torch

    from clipforensics.models.backbones import TINY_BACKBONE
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    torch.manual_seed(0)
    return create_model(ModelConfig(TINY_BACKBONE)).eval()


def test_the_report_has_a_summary_row_and_a_section_per_input_and_the_run_s_provenance(case):
    report, inputs, status = case

    text = report.read_text()
    assert status == 1  # the damaged file
    assert text.count('<section class=input id="input-') == len(inputs) == 4
    for path in inputs.values():
        assert f">{path}</a>" in text
    for name in ("astronaut.png", "walk.mp4"):
        assert hashlib.sha256(inputs[name].read_bytes()).hexdigest() in text
    assert "model.weights_sha256.model.safetensors" in text and "precision" in text
    assert "http://" not in text and "https://" not in text and "src=\"data:image/" in text
    assert not report.with_name("case.html.part").exists()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_report_opens_in_chromium_offline_with_one_section_per_input(case):
    from playwright.sync_api import sync_playwright

    report, inputs, _ = case
    OUTPUT.mkdir(exist_ok=True)
    arguments = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=arguments)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        fetched = []
        page.on("request", lambda request: fetched.append(request.url))
        page.goto(report.as_uri())
        sections = page.locator("section.input")
        headings = sections.locator("h2").all_inner_texts()
        pictures = page.eval_on_selector_all("section.input img", "images => images.map(image => image.naturalWidth)")
        summary = page.locator("table.summary tbody tr").count()
        page.screenshot(path=str(OUTPUT / "case-report.png"), full_page=True)
        browser.close()

    assert sorted(headings) == sorted(map(str, inputs.values()))
    assert summary == 4 and len(pictures) >= 4 and all(width > 0 for width in pictures)
    assert all(url.startswith(("file:", "data:")) for url in fetched)


def test_a_report_that_is_not_html_or_is_one_of_the_inputs_is_refused(tmp_path, capsys):
    photo = tmp_path / "photo.html"
    Image.fromarray(data.astronaut()).save(photo, format="PNG")

    assert main(["detect", str(photo), "--model", "m", "--report", str(tmp_path / "case.txt")]) == 2
    assert "must end in .html" in capsys.readouterr().err
    assert main(["detect", str(photo), "--model", "m", "--report", str(photo)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert photo.read_bytes().startswith(b"\x89PNG")


def test_an_image_s_section_shows_its_map_and_its_explanation_when_they_were_asked_for(tmp_path):
    import torch

    from clipforensics import Predictor
    from clipforensics.evaluation.case import CaseReport
    from clipforensics.models.backbones import TINY_BACKBONE
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    torch.manual_seed(0)
    joint = Predictor(create_model(ModelConfig(TINY_BACKBONE, decoder="linear", layer=1)).eval(), precision="fp32")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    report = CaseReport(tmp_path / "case.html", joint.run_header(), joint.threshold)

    for result in joint.predict(photo, explain=True):
        report.add(result)
    text = report.write().read_text()

    assert "over the manipulation map" in text and "where the model looked" in text
    assert text.count("<figure>") == 2 and hashlib.sha256(photo.read_bytes()).hexdigest() in text
