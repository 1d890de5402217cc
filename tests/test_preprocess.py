"""`clipforensics preprocess`: videos to the dataset layout and manifest, resumable after a kill."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipforensics.cli import main

from .videos import moving_frames, write_video


@pytest.fixture(scope="module")
def raw_dataset(tmp_path_factory) -> Path:
    """FF-like: two manipulated and two real videos, a mask video per fake, and a video of a cat."""
    root = tmp_path_factory.mktemp("raw")
    for source in ("DF", "real"):
        (root / source / "videos").mkdir(parents=True)
        for name in ("000", "001"):
            write_video(root / source / "videos" / f"{name}.mp4", moving_frames(16))
    (root / "masks").mkdir()
    for name in ("000", "001"):
        masks = [np.zeros_like(frame) for frame in moving_frames(16)]
        for index, mask in enumerate(masks):
            mask[150:300, 200 + index : 320 + index] = 255
        write_video(root / "masks" / f"{name}.mp4", masks)
    (root / "cats" / "videos").mkdir(parents=True)
    write_video(root / "cats" / "videos" / "cat.mp4", moving_frames(8, subject="cat"))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(root: Path) -> list[dict]:
    with (root / "manifest.csv").open() as file:
        return list(csv.DictReader(file))


def test_videos_become_the_layout_with_landmarks_and_a_manifest(raw_dataset, tmp_path):
    out = tmp_path / "out"

    status = main(["preprocess", str(raw_dataset / "DF"), str(raw_dataset / "real"), "--output", str(out),
                   "--dataset", "FF", "--frames", "4"])

    assert status == 0
    rows = _manifest(out)
    assert len(rows) == 16
    assert rows[0] == {"path": "FF/DF/000/000.png", "label": "fake", "dataset": "FF", "source": "DF",
                       "video": "000", "mask": ""}
    assert {r["label"] for r in rows if r["source"] == "real"} == {"real"}
    assert sorted({r["path"].rsplit("/", 1)[1] for r in rows}) == ["000.png", "005.png", "010.png", "015.png"]
    frame = out / "FF" / "DF" / "000"
    assert Image.open(frame / "005.png").size == (256, 256)
    assert np.load(frame / "005_lm5.npy").shape == (5, 2) and np.load(frame / "005_lm68.npy").shape == (68, 2)


def test_masks_are_warped_beside_their_frames(raw_dataset, tmp_path):
    out = tmp_path / "out"

    main(["preprocess", str(raw_dataset / "DF"), "--output", str(out), "--dataset", "FF", "--frames", "2",
          "--masks", str(raw_dataset / "masks")])

    rows = _manifest(out)
    assert [r["mask"] for r in rows] == [r["path"].replace(".png", "_mask.png") for r in rows]
    mask = np.asarray(Image.open(out / rows[0]["mask"]))
    assert mask.shape == (256, 256) and 0 < (mask > 127).mean() < 1


def test_videos_without_faces_are_summarised_and_the_status_is_1(raw_dataset, tmp_path, capsys):
    out = tmp_path / "out"

    status = main(["preprocess", str(raw_dataset / "cats"), "--output", str(out), "--dataset", "X", "--frames", "3"])

    assert status == 1
    assert "cat.mp4: no face found in any of the 3 sampled frames" in capsys.readouterr().err
    assert _manifest(out) == []
    assert '"frames_without_faces": 3' in (out / "summary.json").read_text()


def test_a_killed_run_resumes_to_the_same_files_with_nothing_twice(raw_dataset, tmp_path):
    command = [str(Path(sys.executable).with_name("clipforensics")), "preprocess", str(raw_dataset / "DF"),
               str(raw_dataset / "real"), "--dataset", "FF", "--frames", "16"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run([*command, "--output", str(reference)], check=True, capture_output=True, timeout=300)

    run = subprocess.Popen([*command, "--output", str(resumed)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(resumed.rglob(".done.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    finished_before = len(list(resumed.rglob(".done.json")))
    assert 1 <= finished_before < 4, "the run was to be stopped half-way"
    subprocess.run([*command, "--output", str(resumed)], check=True, capture_output=True, timeout=300)

    assert _files(resumed) == _files(reference)
    rows = _manifest(resumed)
    assert len(rows) == len({r["path"] for r in rows}) == 64
