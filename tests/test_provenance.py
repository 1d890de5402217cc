"""Every row carries its input's sha256, taken from the bytes decoding read; every output says once which tool,
model (its weights' sha256), device, precision and options made it, and readers of rows skip that header."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from clipforensics import Predictor, __version__, hashing
from clipforensics.cli import main
from clipforensics.hashing import HashingFile
from clipforensics.hub.checkpoints import save_model
from clipforensics.inference.provenance import read_header, read_rows, run_file
from clipforensics.inference.runtime import resolve_precision
from clipforensics.media import Sampler, open_media

from .videos import moving_frames, write_video


@pytest.fixture
def model_dir(tiny_detector, tmp_path) -> Path:
    return save_model(tiny_detector, tmp_path / "model")


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(folder / "crop.png")
    Image.fromarray(data.astronaut()).save(folder / "photo.jpg", quality=90)
    write_video(folder / "clip.mp4", moving_frames(12))
    (folder / "notes.txt").write_text("not a picture\n")
    return {path.name: path for path in folder.iterdir()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_row_s_sha256_is_hashlib_s_of_its_file(model_dir, inputs, tmp_path):
    out = tmp_path / "rows.jsonl"

    main(["detect", *map(str, inputs.values()), "--model", str(model_dir), "--faces", "none", "--frames", "4",
          "--output", str(out)])

    rows = {Path(row["path"]).name: row for row in read_rows(out)}
    assert set(rows) == set(inputs)
    for name in ("crop.png", "photo.jpg", "clip.mp4"):
        assert rows[name]["sha256"] == _sha256(inputs[name]) and rows[name]["error"] is None
    assert rows["notes.txt"]["sha256"] is None and rows["notes.txt"]["error"]


def test_the_header_record_holds_the_resolved_precision_the_weights_hash_and_the_options(model_dir, inputs,
                                                                                          tmp_path):
    out = tmp_path / "rows.jsonl"

    main(["detect", str(inputs["crop.png"]), "--model", str(model_dir), "--faces", "none", "--precision", "auto",
          "--frames", "8", "--aggregate", "median", "--threshold", "0.7", "--output", str(out)])

    first, row = (json.loads(line) for line in out.read_text().splitlines())
    run = first["run"]
    assert list(first) == ["run"] and row["path"] == str(inputs["crop.png"])
    assert run["tool"] == {"name": "clipforensics", "version": __version__}
    assert run["precision"] == resolve_precision("auto", torch.device("cpu")) and run["device"] == "cpu"
    assert run["model"]["name"] == str(model_dir)
    assert run["model"]["weights_sha256"] == {"model.safetensors": _sha256(model_dir / "model.safetensors")}
    assert run["model"]["family"] == "clip" and run["model"]["parameters"] > 0
    assert {key: run["options"][key] for key in ("faces", "frames", "sampler", "aggregate", "threshold",
                                                 "video_score", "face_detector")} == {
        "faces": "none", "frames": 8, "sampler": "uniform", "aggregate": "median", "threshold": 0.7,
        "video_score": "people", "face_detector": run["options"]["face_detector"]}
    assert run["machine"]["cpu"] and run["started"]


def test_a_csv_output_gets_its_header_beside_it(model_dir, inputs, tmp_path):
    out = tmp_path / "rows.csv"

    main(["detect", str(inputs["crop.png"]), "--model", str(model_dir), "--faces", "none", "--precision", "fp32",
          "--output", str(out)])

    with out.open() as file:
        [row] = csv.DictReader(file)
    assert row["sha256"] == _sha256(inputs["crop.png"])
    assert run_file(out) == tmp_path / "rows.run.json"
    assert read_header(out)["run"]["precision"] == "fp32"


def test_the_api_gives_the_header_of_the_run_it_would_make(tiny_detector, inputs):
    predictor = Predictor(tiny_detector, precision="fp32")

    header = predictor.run_header(faces="none", frames=Sampler("spread", 5))
    [result] = predictor.predict(inputs["crop.png"], faces="none")

    assert header["run"]["options"]["sampler"] == "spread" and header["run"]["options"]["frames"] == 5
    assert header["run"]["model"]["weights_sha256"] is None  # built in memory: no file to hash
    assert result.sha256 == _sha256(inputs["crop.png"]) and result.to_dict()["sha256"] == result.sha256


def test_an_image_is_read_once_for_its_pixels_and_its_digest(inputs, monkeypatch):
    read = []

    class Counted(io.FileIO):
        def readinto(self, buffer) -> int:
            count = super().readinto(buffer)
            read.append(count)
            return count

    monkeypatch.setattr(hashing, "open", lambda path, mode, buffering: Counted(path, mode), raising=False)

    media = open_media(inputs["photo.jpg"])

    assert media.sha256 == _sha256(inputs["photo.jpg"])
    assert sum(read) == inputs["photo.jpg"].stat().st_size


def test_a_video_s_digest_covers_the_frames_after_the_last_one_sampled(inputs):
    media = open_media(inputs["clip.mp4"], Sampler("uniform", 2))

    assert media.sha256 is None  # not until its frames are read
    assert len(list(media.frames)) == 2 and media.sha256 == _sha256(inputs["clip.mp4"])


def test_bytes_read_out_of_order_are_hashed_in_file_order(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 1000)
    file = HashingFile(path)

    file.seek(200_000)
    file.read(1000)
    file.seek(0)
    file.read(5000)

    assert file.sha256() == _sha256(path) and file.tell() == 5000
    file.close()


def test_a_rerun_into_the_scanned_folder_reads_neither_its_csv_nor_the_header_beside_it(model_dir, inputs, caplog):
    folder = inputs["crop.png"].parent
    out = folder / "rows.csv"
    arguments = ["detect", str(folder), "--model", str(model_dir), "--faces", "none", "--output", str(out)]
    main(arguments)

    main(arguments)

    with out.open() as file:
        assert sorted(Path(row["path"]).name for row in csv.DictReader(file)) == sorted(inputs)
    assert "2 files of this command's own output not read as inputs" in caplog.text  # rows.csv, rows.run.json
