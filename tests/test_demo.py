"""`clipforensics demo --quick`: the offline tour runs the whole tool on built-in inputs (data, training,
evaluation, detection, localization) and writes a page whose every link leads to a file it wrote. Quick: the same
steps as the full tour on fewer frames for fewer epochs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clipforensics.demo import QUICK
from clipforensics.hub.checkpoints import load_model
from clipforensics.inference.provenance import read_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tour(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    workdir = tmp_path_factory.mktemp("tour")
    command = Path(sys.executable).with_name("clipforensics")
    done = subprocess.run([str(command), "demo", "--quick", "--workdir", str(workdir)], capture_output=True, text=True,
                          timeout=900, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", **_package_path()})
    return workdir, done


def _package_path() -> dict[str, str]:
    """PYTHONPATH, when given, so that the command runs the package under test rather than the one installed."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def test_the_tour_ends_well_and_says_what_its_models_are(tour):
    workdir, done = tour

    assert done.returncode == 0, done.stderr[-3000:]
    assert "prove that the pipeline runs end to end, not that they detect deepfakes" in done.stdout
    assert "clipforensics detect FILE --model gend-clip-l14" in done.stdout


def test_the_page_links_only_files_that_exist(tour):
    workdir, _ = tour
    page = (workdir / "index.html").read_text()

    targets = re.findall(r'(?:href|src)="([^"]+)"', page)

    assert len(targets) >= 12 and "detect/case.html" in targets
    assert all((workdir / target).is_file() for target in targets), [t for t in targets if not (workdir / t).is_file()]
    assert "not that they detect deepfakes" in page


def test_the_models_are_trained_and_evaluated_with_the_real_code(tour):
    workdir, _ = tour

    detector = json.loads((workdir / "eval" / "detector" / "metrics.json").read_text())
    localizer = json.loads((workdir / "eval" / "localizer" / "metrics.json").read_text())

    test_faces = QUICK.videos["test"] * QUICK.frames
    assert detector["counts"]["frames"] == 2 * test_faces and detector["counts"]["failed"] == 0  # real and blended
    assert localizer["counts"]["masked"] == test_faces and localizer["table"][0]["iou"] is not None
    for run in ("detector", "localizer"):
        assert (workdir / "runs" / run / "last" / "model.safetensors").is_file()
        assert (workdir / "runs" / run / "logs" / "version_0" / "metrics.csv").is_file()
        assert load_model(workdir / "runs" / run / "last")[1]["epochs_trained"] == QUICK.epochs[run]


def test_detect_gives_each_input_its_row_the_cat_and_the_damaged_file_theirs_with_the_reason(tour):
    workdir, _ = tour

    rows = {Path(row["path"]).name: row for row in read_rows(workdir / "detect" / "results.jsonl")}

    assert list(rows) == ["astronaut.png", "chelsea-cat.png", "astronaut-walk.mp4", "two-people.mp4", "damaged.png"]
    assert rows["astronaut.png"]["faces"] == 1 and rows["astronaut-walk.mp4"]["frames_with_faces"] == 12
    assert rows["chelsea-cat.png"]["error"].startswith("no face found in image")
    assert "damaged" in rows["damaged.png"]["error"]
    assert (workdir / "detect" / "astronaut.png").is_file() and (workdir / "detect" / "astronaut-walk.mp4").is_file()
    assert all(row["mask"] for row in read_rows(workdir / "localize" / "results.jsonl"))


def test_the_video_of_two_people_is_fake_by_its_blended_person_and_the_tour_says_what_each_rule_makes_of_it(tour):
    """The astronaut all along, her self-blended double for the middle third: two people, each scored apart, the
    video's p_fake its most fake person's, the double's; the tour prints and shows that beside the mean over all
    faces and the largest face's (with the demo's seed both say real: the README gives the figures)."""
    workdir, done = tour

    rows = {Path(row["path"]).name: row for row in read_rows(workdir / "detect" / "results.jsonl")}
    row = rows["two-people.mp4"]
    page = (workdir / "index.html").read_text()

    assert [(person["id"], person["frames"]) for person in row["people"]] == [(0, 12), (1, 4)]
    assert row["p_fake"] == max(person["p_fake"] for person in row["people"])
    assert row["p_fake"] == row["people"][row["deciding_person"]]["p_fake"]
    real, blended = row["people"]
    assert row["deciding_person"] == 1 and row["label"] == "fake" and blended["p_fake"] - real["p_fake"] >= 0.2
    assert "== People in two-people.mp4" in done.stdout and "--video-score largest would say" in done.stdout
    assert page.count("<td>#") == 2 and "(decides)" in page and "the mean over all 16 faces would say" in page
