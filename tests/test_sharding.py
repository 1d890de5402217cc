"""`detect` and `evaluate` sharded over two CPU processes (Lightning launches the second) write exactly
what one process writes: every input's row, in input order, errors included."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clipforensics.inference.sharding import Devices

pytestmark = pytest.mark.slow


def _run(*arguments: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("clipforensics")), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture
def faces_with_a_corrupt_frame(sample_faces, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(sample_faces, data)
    (data / "FF" / "DF" / "000_003" / "000.png").write_bytes(b"not a png")
    return data


def test_sharded_evaluate_writes_the_single_process_predictions_and_metrics(reference, faces_with_a_corrupt_frame,
                                                                            tmp_path):
    common = ["evaluate", "--model", str(reference / "gend-hf"), "--data", str(faces_with_a_corrupt_frame),
              "--precision", "fp32", "--device", "cpu", "--name", "run"]

    single = _run(*common, "--output-dir", str(tmp_path / "single"))
    sharded = _run(*common, "--output-dir", str(tmp_path / "sharded"), "--devices", "2")

    assert single.returncode == sharded.returncode == 1, sharded.stderr[-3000:]  # 1: the corrupt frame
    rows = [list(csv.DictReader((tmp_path / run / "predictions.csv").open())) for run in ("single", "sharded")]
    assert len(rows[1]) == 32 and [r["path"] for r in rows[1]] == [r["path"] for r in rows[0]]
    for one, two in zip(*rows):
        assert one["error"] == two["error"]
        assert one["p_fake"] == two["p_fake"] or float(one["p_fake"]) == pytest.approx(float(two["p_fake"]), abs=1e-6)
    assert sum(bool(r["error"]) for r in rows[1]) == 1
    tables = [json.loads((tmp_path / run / "metrics.json").read_text())["tables"] for run in ("single", "sharded")]
    for level in ("frame", "video"):
        for one, two in zip(tables[0][level], tables[1][level], strict=True):
            assert {k: v for k, v in two.items() if not isinstance(v, float)} == \
                {k: v for k, v in one.items() if not isinstance(v, float)}
            assert {k: v for k, v in two.items() if isinstance(v, float)} == \
                pytest.approx({k: v for k, v in one.items() if isinstance(v, float)}, abs=1e-6)


def test_sharded_detect_keeps_every_input_in_order_and_mirrors_output_paths(reference, faces_with_a_corrupt_frame,
                                                                           tmp_path):
    common = ["detect", str(faces_with_a_corrupt_frame / "FF"), "--faces", "none", "--model",
              str(reference / "gend-hf"), "--precision", "fp32", "--device", "cpu"]

    single = _run(*common, "--output", str(tmp_path / "single.jsonl"), "--save-crops", str(tmp_path / "crops1"))
    sharded = _run(*common, "--output", str(tmp_path / "sharded.jsonl"), "--save-crops", str(tmp_path / "crops2"),
                   "--devices", "2")

    assert single.returncode == sharded.returncode == 1, sharded.stderr[-3000:]
    rows = [[json.loads(line) for line in (tmp_path / f"{run}.jsonl").open()] for run in ("single", "sharded")]
    assert len(rows[1]) == 20 and [r["path"] for r in rows[1]] == [r["path"] for r in rows[0]]
    assert [r["error"] for r in rows[1]] == [r["error"] for r in rows[0]]
    assert [r["p_fake"] for r in rows[1]] == pytest.approx([r["p_fake"] for r in rows[0]], abs=1e-6, nan_ok=True)
    crops = [sorted(p.relative_to(tmp_path / f"crops{n}") for p in (tmp_path / f"crops{n}").rglob("*.png"))
             for n in (1, 2)]
    assert crops[1] == crops[0] and len(crops[1]) == 19


def test_sharded_localize_writes_every_input_s_files_and_rows_in_order(reference, faces_with_a_corrupt_frame,
                                                                       tmp_path):
    common = ["localize", str(faces_with_a_corrupt_frame / "FF" / "DF"), str(faces_with_a_corrupt_frame / "FF" / "NT"),
              "--model", str(reference / "declip-conv-4.pth"), "--precision", "fp32", "--device", "cpu"]

    single = _run(*common, "--output-dir", str(tmp_path / "single"))
    sharded = _run(*common, "--output-dir", str(tmp_path / "sharded"), "--devices", "2")

    assert single.returncode == sharded.returncode == 1, sharded.stderr[-3000:]
    rows = [[json.loads(line) for line in (tmp_path / run / "results.jsonl").open()] for run in ("single", "sharded")]
    assert len(rows[1]) == 8 and [r["path"] for r in rows[1]] == [r["path"] for r in rows[0]]
    assert [r["error"] is None for r in rows[1]] == [r["error"] is None for r in rows[0]]
    assert [r["p_fake"] for r in rows[1]] == pytest.approx([r["p_fake"] for r in rows[0]], abs=1e-6, nan_ok=True)
    for one, two in zip(*rows):
        if two["mask"]:
            assert Path(two["mask"]).is_file()
            assert Path(two["mask"]).relative_to(tmp_path / "sharded") == Path(one["mask"]).relative_to(
                tmp_path / "single")


def test_more_than_one_device_takes_a_kind_of_device_not_one_device():
    assert not Devices.from_device("cuda:1", 1, 1, "ddp").sharded
    assert Devices.from_device("cuda", 4, 2, "ddp").sharded
    with pytest.raises(ValueError, match="--device must be one of auto, cpu, cuda"):
        Devices.from_device("cuda:1", 2, 1, "ddp")
