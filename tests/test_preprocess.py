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

from .videos import moving_frames, write_sound, write_video

PREPROCESS = ["preprocess", "--dataset", "FF", "--frames", "2"]


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


def test_a_folder_s_videos_are_told_by_content_and_its_other_files_named_without_failing_the_run(tmp_path, capsys):
    raw = tmp_path / "raw" / "DF"
    raw.mkdir(parents=True)
    write_video(raw / "000.mp4", moving_frames(4))
    (raw / "001").write_bytes((raw / "000.mp4").read_bytes())
    (raw / "metadata.json").write_text('{"000.mp4": {"label": "FAKE"}}')
    write_sound(raw / "voice.m4a")

    status = main([*PREPROCESS, str(raw), "--output", str(tmp_path / "out")])

    assert status == 0
    assert {row["video"] for row in _manifest(tmp_path / "out")} == {"000", "001"}
    assert (f"clipforensics: {raw}: 2 files neither image nor video, not preprocessed: metadata.json, voice.m4a"
            in capsys.readouterr().err.splitlines())


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


def _frame_paths(root: Path) -> list[str]:
    return [r["path"] for r in _manifest(root)]


def test_a_failed_input_is_tried_again_on_the_next_run(tmp_path, capsys):
    raw = tmp_path / "raw" / "DF"
    raw.mkdir(parents=True)
    (raw / "000.mp4").write_bytes(b"not a video yet")
    out = tmp_path / "out"

    first = main([*PREPROCESS, str(raw), "--output", str(out)])
    listed = capsys.readouterr().err.splitlines()[-1]
    write_video(raw / "000.mp4", moving_frames(4))
    second = main([*PREPROCESS, str(raw), "--output", str(out)])

    assert (first, second) == (1, 0)
    assert listed == f"  {raw / '000.mp4'}: unreadable video (Invalid data found when processing input)"
    assert _frame_paths(out) == ["FF/DF/000/000.png", "FF/DF/000/003.png"]
    assert '"failed": {}' in (out / "summary.json").read_text()


def test_a_rerun_with_other_settings_is_refused_naming_them_and_writes_nothing(raw_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    video = str(raw_dataset / "DF" / "videos" / "000.mp4")
    main([*PREPROCESS, video, "--output", str(out)])
    before = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    capsys.readouterr()

    status = main([*PREPROCESS, video, "--output", str(out), "--crop-size", "128", "--frames", "3"])

    err = capsys.readouterr().err
    assert status == 2
    assert "faces.crop_size: 256 -> 128" in err and "sampler.count: 2 -> 3" in err and "nothing was written" in err
    assert {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()} == before
    assert main([*PREPROCESS, video, "--output", str(out), "--crop-size", "128", "--overwrite"]) == 0
    assert Image.open(out / "FF/DF/000/000.png").size == (128, 128)


def test_overwrite_redoes_what_a_previous_run_finished(raw_dataset, tmp_path):
    out = tmp_path / "out"
    video = str(raw_dataset / "DF" / "videos" / "000.mp4")
    main([*PREPROCESS, video, "--output", str(out)])
    reference = (out / "FF/DF/000/000.png").read_bytes()
    Image.new("RGB", (256, 256)).save(out / "FF/DF/000/000.png")

    status = main([*PREPROCESS, video, "--output", str(out), "--overwrite"])

    assert status == 0
    assert (out / "FF/DF/000/000.png").read_bytes() == reference


def test_an_output_that_is_a_file_is_a_usage_error(raw_dataset, tmp_path, capsys):
    target = tmp_path / "out.csv"
    target.write_text("keep me")

    status = main([*PREPROCESS, str(raw_dataset / "DF"), "--output", str(target)])

    assert status == 2
    assert "a file" in capsys.readouterr().err and target.read_text() == "keep me"


def test_inputs_that_would_share_a_folder_get_distinct_ones(tmp_path):
    raw = tmp_path / "raw" / "DF"
    raw.mkdir(parents=True)
    write_video(raw / "a.mp4", moving_frames(4))
    write_video(raw / "a.mkv", moving_frames(6))
    out = tmp_path / "out"

    status = main([*PREPROCESS, str(raw), "--output", str(out)])

    assert status == 0
    assert _frame_paths(out) == ["FF/DF/a-2/000.png", "FF/DF/a-2/003.png", "FF/DF/a/000.png", "FF/DF/a/005.png"]


def test_an_input_is_never_written_over(face_crop, tmp_path, capsys):
    frame = tmp_path / "data" / "FF" / "DF" / "000" / "000.png"
    frame.parent.mkdir(parents=True)
    frame.write_bytes(face_crop.read_bytes())
    before = frame.read_bytes()

    status = main(["preprocess", str(frame), "--output", str(tmp_path / "data"), "--dataset", "FF",
                   "--source", "DF"])

    assert status == 2
    assert "choose an --output outside the inputs' folders" in capsys.readouterr().err
    assert frame.read_bytes() == before


def test_an_output_inside_the_inputs_folder_is_not_read_back_as_input(tmp_path, capsys):
    raw = tmp_path / "raw"
    (raw / "DF").mkdir(parents=True)
    write_video(raw / "DF" / "000.mp4", moving_frames(4))
    command = [*PREPROCESS, str(raw), "--output", str(raw / "out")]
    main(command)
    files = _files(raw)

    status = main(command)

    assert status == 0
    assert _files(raw) == files
    assert "1 input:" in capsys.readouterr().err.splitlines()[-1]


def test_frame_files_sort_in_frame_order_in_long_videos(tmp_path):
    raw = tmp_path / "raw" / "DF"
    raw.mkdir(parents=True)
    write_video(raw / "long.mp4", moving_frames(1) * 1001)

    main(["preprocess", str(raw), "--output", str(tmp_path / "out"), "--dataset", "FF", "--frames", "3"])

    names = [p.rsplit("/", 1)[1] for p in _frame_paths(tmp_path / "out")]
    assert names == ["0000.png", "0500.png", "1000.png"]
