"""The page of `clipforensics serve` in a real browser: Debian's chromium, driven by Playwright, against the real
server with tiny random models. It uploads a face photo and a short video, waits for the verdicts, checks the
cards, the boxes drawn, the video's chart, the heatmap and the CSV download; a video of two people gets a row per
person and a line per person, and a video with too few frames with a face is shown as such. Screenshots are left in
tests/output/ (page.png, page-narrow.png, page-people.png, page-explain.png) for a person to look at."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from clipforensics.hub.checkpoints import save_model
from clipforensics.inference.rows import CSV_COLUMNS
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig

from .videos import moving_frames, write_video

CHROMIUM = shutil.which("chromium")
OUTPUT = Path(__file__).resolve().parent / "output"
TRAINED = {"epochs_trained": 3, "global_step": 12, "val_auc": 0.8333333134651184}
"""A provenance as training records it: a metric at float32's precision."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"the server did not answer /healthz within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`clipforensics serve` with a tiny detector and a tiny localizer, on a free loopback port."""
    root = tmp_path_factory.mktemp("serve")
    torch_seed_models(root)
    port = _free_port()
    log = root / "server.log"
    command = [str(Path(sys.executable).with_name("clipforensics")), "serve", "--model", str(root / "detector"),
               "--localizer", str(root / "localizer"), "--host", "127.0.0.1", "--port", str(port),
               "--state-dir", str(root / "state")]
    with log.open("w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def torch_seed_models(root: Path) -> None:
    import torch

    torch.manual_seed(0)
    save_model(create_model(ModelConfig(TINY_BACKBONE)), root / "detector", provenance=TRAINED)
    save_model(create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="conv-4", layer=1)), root / "localizer")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("media")
    photo = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    video = write_video(folder / "clip.mp4", moving_frames(12))
    return [photo, video]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    arguments = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=arguments)
        yield browser
        browser.close()


def test_page_checks_a_photo_and_a_video(server, media, browser, tmp_path):
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(server)
    model = page.locator("#model")
    model.get_by_text("Threshold").wait_for()
    assert "0.50" in model.inner_text()
    assert page.locator("#localize").is_visible(), "a localizer is loaded: the page offers heatmaps"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "files", "the file picker is the first stop for the keyboard"

    page.set_input_files("#files", [str(path) for path in media])
    assert page.locator("#selection-list li").count() == 2
    page.fill("#frames", "4")
    page.click("#submit")
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)
    assert not page.locator("#message").is_visible(), page.locator("#message").inner_text()

    cards = page.locator(".card")
    assert cards.count() == 2
    photo, video = cards.nth(0), cards.nth(1)
    assert photo.get_attribute("data-path") == "astronaut.png"
    assert video.get_attribute("data-path") == "clip.mp4"
    for card in (photo, video):
        assert card.get_attribute("data-verdict") in {"fake", "real"}, card.inner_text()
        assert card.locator(".p-fake").inner_text().startswith("p_fake ")

    canvas = photo.locator("canvas.faces")
    canvas.wait_for()
    page.wait_for_function("c => c.dataset.faces !== '0'", arg=canvas.element_handle(), timeout=10_000)
    assert _painted_pixels(canvas) > 0, "the face's box and label are drawn on the canvas"

    chart = video.locator("svg.timeline")
    assert chart.locator("circle.point").count() + chart.locator("path.no-face").count() == 4
    assert chart.locator("circle.point").count() >= 1
    threshold = chart.locator("line.threshold")
    assert threshold.count() == 1 and threshold.get_attribute("stroke-dasharray")

    overlay = photo.locator("img.overlay-media")
    assert overlay.count() == 1
    overlay.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle(),
                           timeout=10_000)

    with page.expect_download() as download_info:
        page.click("#download-csv")
    rows = list(csv.DictReader(download_info.value.path().open(newline="")))
    assert [row["path"] for row in rows] == ["astronaut.png", "clip.mp4"]
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows[1]["kind"] == "video" and rows[1]["frames"] == "4"
    for row in rows:
        assert 0 <= float(row["p_fake"]) <= 1 and row["label"] in {"fake", "real"} and not row["error"]

    with page.expect_download() as download_info:
        page.click("#download-json")
    full = json.loads(download_info.value.path().read_text())
    assert [row["path"] for row in full] == ["astronaut.png", "clip.mp4"]
    assert full[0]["detail"][0]["faces"][0]["box"] and full[0]["overlay"]

    _wait_for_pictures(page)
    page.screenshot(path=str(OUTPUT / "page.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => window.innerWidth === 390")  # reading scrollWidth then lays the page out anew
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(OUTPUT / "page-narrow.png"), full_page=True)
    assert width <= 390, f"the page scrolls sideways on a narrow screen ({width} px wide)"
    assert not problems, problems
    context.close()


def test_the_explain_toggle_shows_each_faces_explanation_over_its_face_and_off_shows_none(server, media, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server)
    page.locator("#model").get_by_text("Threshold").wait_for()
    page.uncheck("#localize")

    page.check("#explain")
    page.set_input_files("#files", [str(media[0])])
    page.click("#submit")
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)
    explanation = page.locator(".card img.explanation")
    explanation.first.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=explanation.first.element_handle(),
                           timeout=10_000)
    shown = page.locator(".card .explained-verdict").first.inner_text()
    reason = page.locator(".card .explained-reason").first.inner_text()
    scored = page.locator(".card .p-fake").inner_text()
    OUTPUT.mkdir(exist_ok=True)
    page.locator(".card").screenshot(path=str(OUTPUT / "page-explain.png"))

    page.uncheck("#explain")
    page.click("#submit")
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)

    assert shown.startswith("#") and scored.split()[-1] in shown, (shown, scored)
    assert reason in ("the map: why fake", "the map: why real")
    assert page.locator(".card .p-fake").inner_text() == scored
    assert page.locator(".card img.explanation").count() == 0 and page.locator(".card .explanations").count() == 0
    page.close()


def test_the_pages_csv_has_the_columns_python_writes_and_its_numbers_are_rounded(server, media, browser):
    page = browser.new_page(accept_downloads=True)
    page.goto(server)
    model = page.locator("#model")
    model.get_by_text("Threshold").wait_for()
    assert "val auc 0.833" in model.inner_text() and str(TRAINED["val_auc"]) not in model.inner_text()

    page.set_input_files("#files", [str(media[0])])
    page.click("#submit")
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)
    with page.expect_download() as csv_download:
        page.click("#download-csv")
    with page.expect_download() as json_download:
        page.click("#download-json")

    text = csv_download.value.path().read_text()
    [row] = json.loads(json_download.value.path().read_text())
    [written] = list(csv.DictReader(text.splitlines()))
    assert text.splitlines()[0].split(",") == list(CSV_COLUMNS)
    assert float(written["p_fake_raw"]) == row["p_fake_raw"] and written["decided_by"] == row["decided_by"] != ""
    shown = page.locator(".card .p-fake").inner_text()
    assert shown == f"p_fake {row['p_fake']:.2f}", shown
    page.close()


def test_the_page_reloaded_lists_the_earlier_job_and_shows_its_results_again(server, media, browser):
    page = browser.new_page()
    page.goto(server)
    page.locator("#model").get_by_text("Threshold").wait_for()
    page.set_input_files("#files", [str(media[0])])
    page.click("#submit")
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)
    shown = page.locator(".card .p-fake").inner_text()

    page.reload()
    earlier = page.locator("#jobs .job").first
    earlier.wait_for()

    assert page.locator(".card").count() == 0
    assert earlier.locator(".file-name").inner_text() == "astronaut.png" and earlier.get_attribute("data-status") == "done"
    assert "Scoring and heatmaps" in earlier.inner_text(), "the localize job sent with it is listed within its entry"
    earlier.get_by_role("button").click()
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)
    card = page.locator(".card")
    assert card.count() == 1 and card.get_attribute("data-path") == "astronaut.png"
    assert page.locator(".card .p-fake").inner_text() == shown
    overlay = card.locator("img.overlay-media")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=overlay.element_handle(), timeout=10_000)
    page.close()


def test_page_shows_the_servers_refusal(server, browser):
    """A file dropped on the drop zone that the server cannot read: its card says why in words (or the page
    shows the server's refusal), and the page stays usable."""
    page = browser.new_page()
    page.goto(server)
    page.locator("#model").get_by_text("Threshold").wait_for()
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 32, 110, 111])], "broken.png",
                                    {type: "image/png"}));
        document.querySelector("#dropzone").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true,
                                                                                 cancelable: true}));
    }""")
    assert page.locator("#selection-list li").inner_text().startswith("broken.png")
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelector('#results')?.dataset.state === 'done'"
        " || !document.querySelector('#message').hidden", timeout=60_000)
    if page.locator("#message").is_visible():
        assert page.locator("#message").inner_text().strip()
    else:
        card = page.locator(".card")
        assert card.get_attribute("data-verdict") == "error"
        assert "Could not score this file" in card.inner_text()
    assert page.locator("#submit").is_enabled()
    page.close()


@pytest.mark.parametrize(("faces", "frames"), [("none", 7), ("auto", 48)])
def test_page_takes_the_face_mode_and_frames_the_service_announces(server, browser, faces, frames):
    """The page's Faces choice and frame count start at the detector's defaults as /v1/models gives them, not
    values of its own."""
    page = browser.new_page()

    def announce(route) -> None:
        answer = route.fetch().json()
        answer["models"]["detector"].update(faces=faces, frames=frames)
        route.fulfill(json=answer)

    page.route("**/v1/models", announce)
    page.goto(server)
    page.locator("#model").get_by_text("Threshold").wait_for()

    assert page.locator("#faces").input_value() == faces
    assert page.locator("#frames").input_value() == str(frames)
    page.close()


def test_a_video_card_shows_each_person_with_their_face_and_line_and_insufficient_evidence_as_such(
        server, browser, tmp_path):
    from .scenes import Head, scene

    two = write_video(tmp_path / "two.mp4", [scene(400, 240, [Head(80, (100 + 6 * i, 120)),
                                                              Head(80, (300, 120), photo="camera")])
                                             for i in range(8)])
    glimpse = write_video(tmp_path / "glimpse.mp4", [scene(320, 200, [Head(80, (160, 100))] if i in (2, 9) else [])
                                                     for i in range(12)])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(server)
    page.locator("#model").get_by_text("Threshold").wait_for()
    page.set_input_files("#files", [str(two), str(glimpse)])
    page.fill("#frames", "12")
    page.uncheck("#localize")
    page.click("#submit")
    page.wait_for_selector("#results[data-state=done]", timeout=60_000)

    card, short = page.locator(".card").nth(0), page.locator(".card").nth(1)
    people = card.locator("table.people tbody tr")
    assert people.count() == 2 and card.get_attribute("data-verdict") in {"fake", "real"}
    for number in range(2):
        person = people.nth(number)
        assert person.get_attribute("data-person") == str(number)
        face = person.locator("img.face")
        page.wait_for_function("img => img.complete && img.naturalWidth === 96", arg=face.element_handle(),
                               timeout=10_000)
        cells = person.locator("td")
        assert cells.nth(2).inner_text().startswith("8 frames")
        assert cells.nth(3).inner_text().startswith("0.") and cells.nth(4).inner_text().lower() in {"fake", "real"}
    assert card.locator("tr.deciding").count() == 1 and "decides the video" in card.locator("tr.deciding").inner_text()
    chart = card.locator("svg.timeline")
    assert [chart.locator("g.person").nth(n).get_attribute("data-person") for n in range(2)] == ["0", "1"]
    assert chart.locator("g.person polyline.series").count() == 2 and chart.locator("line.threshold").count() == 1
    assert chart.locator("circle.point").count() == 16
    assert short.get_attribute("data-verdict") == "insufficient"
    assert short.locator(".badge").first.inner_text().lower() == "too little evidence"
    assert "too few for a verdict" in short.inner_text()
    assert "1 with too few frames with a face for a verdict" in page.locator("#results-summary").inner_text()

    OUTPUT.mkdir(exist_ok=True)
    _wait_for_pictures(page)
    page.screenshot(path=str(OUTPUT / "page-people.png"), full_page=True)
    assert not problems, problems
    page.close()


def _wait_for_pictures(page) -> None:
    """Until every video shows a frame and every image is loaded, so the screenshot shows what a user sees."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("() => [...document.querySelectorAll('video')].every(v => v.readyState >= 2)"
                               " && [...document.querySelectorAll('img')].every(i => i.complete)", timeout=10_000)
    except PlaywrightTimeout:
        pass  # a video this chromium cannot decode: the screenshot shows it as the user would


def _painted_pixels(canvas) -> int:
    """How many pixels of the canvas hold something (it is transparent where nothing was drawn)."""
    return canvas.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }")
