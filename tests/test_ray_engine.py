"""`--engine ray`: model replicas on a local Ray (2 CPUs, started and stopped here) write what the local engine
writes, row for row, even when a replica dies mid-run; a stopped run resumes with only what was missing."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from clipforensics.cli import main
from clipforensics.hub.checkpoints import save_model
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.inference import parts as parts_module
from clipforensics.inference import ray_engine
from clipforensics.inference.provenance import is_header, read_header, read_rows
from clipforensics.inference.ray_engine import MISSING_RAY, inputs_per_call
from clipforensics.words import counted

from .videos import moving_frames, write_video

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
RAY = ["--engine", "ray", "--replicas", "2"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_model(create_model(ModelConfig(TINY_BACKBONE)).eval(), tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Photos with a face, a video, a damaged file and a faceless image."""
    folder = tmp_path_factory.mktemp("inputs") / "mixed"
    (folder / "photos").mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(folder / "photos" / "astronaut.png")
    Image.fromarray(data.astronaut()[:, ::-1]).save(folder / "photos" / "mirrored.jpg")
    Image.fromarray(data.chelsea()).save(folder / "photos" / "cat.png")
    (folder / "photos" / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    write_video(folder / "clip.mp4", moving_frames(6))
    return folder


ALONE = ["--batch-size", "1"]


@contextmanager
def one_thread():
    """With ``ALONE`` (each crop scored alone), the arithmetic of a replica with one CPU: fp32 results depend
    on which crops share a model call and on how many threads reduce them, down to the last bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def same_arithmetic():
    with one_thread():
        yield ALONE


@contextmanager
def a_replica_killed_once(marker: Path):
    """The next run's first call kills its replica (as an out-of-memory kill would), once: a replica class
    defined here travels to Ray's workers by value, with the marker it leaves when it dies."""
    class DiesOnce(ray_engine.Replica):
        def __call__(self, batch: dict) -> dict:
            if not marker.exists():
                marker.touch()
                os._exit(1)
            return super().__call__(batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ray_engine, "Replica", DiesOnce)
        yield


@pytest.fixture(scope="module")
def local_rows(model_dir, mixed, tmp_path_factory) -> Path:
    """What the local engine writes for ``mixed``, faces found, each crop scored alone."""
    local = tmp_path_factory.mktemp("local") / "local.jsonl"
    with one_thread():
        assert _detect(str(mixed), "--model", str(model_dir), "--output", str(local), *ALONE) == 1  # the damaged file
    return local


@pytest.fixture(scope="module")
def killed_run(model_dir, mixed, tmp_path_factory) -> tuple[Path, Path, Path, int]:
    """``mixed`` without face search to CSV, locally and on Ray with parquet parts while a replica is killed:
    the local output, Ray's, the marker the killed replica left, and Ray's exit status."""
    folder = tmp_path_factory.mktemp("killed")
    local, distributed, marker = folder / "local.csv", folder / "ray.csv", folder / "killed"
    common = [str(mixed), "--model", str(model_dir), "--faces", "none", *ALONE]
    with one_thread():
        _detect(*common, "--output", str(local))
        with a_replica_killed_once(marker):
            status = _detect(*common, "--output", str(distributed), *RAY, "--format", "parquet")
    return local, distributed, marker, status


def _detect(*arguments: str) -> int:
    return main(["detect", *arguments, "--frames", "3", "--precision", "fp32", "--device", "cpu"])


def _same_rows(one: str, two: str) -> None:
    """Equal rows, but for the last bits of scores: a model call's result depends on which crops share it."""
    def loose(text: str) -> list:
        return [json.loads(line, parse_float=lambda value: pytest.approx(float(value), abs=1e-6))
                for line in _rows_text(text).splitlines()]
    assert loose(two) == [json.loads(line) for line in _rows_text(one).splitlines()]


def _rows_text(text: str) -> str:
    """A JSONL output's rows, as written, without its header (whose start time differs between runs)."""
    header, _, rows = text.partition("\n")
    assert is_header(json.loads(header))
    return rows


def _header(path: Path) -> dict:
    """An output's header but for its start time."""
    header = read_header(path)["run"]
    return {key: value for key, value in header.items() if key != "started"}


def test_the_ray_engine_writes_the_local_engine_s_rows_byte_for_byte(model_dir, mixed, local_rows, tmp_path,
                                                                    same_arithmetic):
    local, distributed = local_rows, tmp_path / "ray.jsonl"

    assert _detect(str(mixed), "--model", str(model_dir), "--output", str(distributed), *RAY, *same_arithmetic) == 1

    rows = list(read_rows(distributed))
    assert _rows_text(distributed.read_text()) == _rows_text(local.read_text())
    assert _header(distributed) == _header(local)
    assert _header(distributed)["model"]["weights_sha256"] == {"model.safetensors": _sha256(model_dir /
                                                                                           "model.safetensors")}
    assert {row["kind"] for row in rows} == {"image", "video"} and len(rows) == 5
    assert sum(row["error"] is not None for row in rows) == 2  # damaged, and no face in the cat
    assert not (tmp_path / "ray.jsonl.parts").exists()


def test_csv_and_parquet_parts_give_the_local_csv(killed_run):
    local, distributed, _, _ = killed_run

    assert distributed.read_text() == local.read_text()


def test_a_replica_killed_mid_run_loses_and_repeats_no_input(killed_run):
    local, distributed, marker, status = killed_run

    assert marker.exists(), "no replica was killed"
    paths = [line.split(",")[0] for line in distributed.read_text().splitlines()[1:]]
    assert status == 1 and paths == sorted(set(paths)) and len(paths) == 5
    assert distributed.read_text() == local.read_text()


def test_a_stopped_run_resumes_scoring_only_what_was_missing(model_dir, tmp_path, monkeypatch, capsys):
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for index in range(12):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(crops / f"{index:02d}.png")
    local, distributed = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    common = [str(crops), "--model", str(model_dir), "--faces", "none", "--batch-size", "2"]
    _detect(*common, "--output", str(local))
    write = parts_module.Parts.write

    def stop_after_two_parts(self, rows):
        if len(list(self.folder.glob("rows-*"))) == 2:
            raise KeyboardInterrupt
        write(self, rows)

    monkeypatch.setattr(parts_module.Parts, "write", stop_after_two_parts)
    assert _detect(*common, "--output", str(distributed), *RAY) == 1
    done = sum(len(part.read_text().splitlines()) for part in (tmp_path / "ray.jsonl.parts").glob("rows-*.jsonl"))
    assert 0 < done < 12 and not distributed.exists()
    assert (f"clipforensics: stopped (Ctrl-C): the rows of {counted(done, 'input')} are kept in "
            f"{tmp_path / 'ray.jsonl.parts'}; run the same command with --resume to score the rest"
            in capsys.readouterr().err)
    monkeypatch.setattr(parts_module.Parts, "write", write)
    capsys.readouterr()

    assert _detect(*common, "--output", str(distributed), *RAY) == 2  # the parts are kept for --resume
    assert "--resume" in capsys.readouterr().err
    kept = _contents(tmp_path / "ray.jsonl.parts")
    other_model = save_model(create_model(ModelConfig(TINY_BACKBONE)), tmp_path / "other-model")
    for changed, said in ((["--frames", "16"], "frames: 3 -> 16"),
                          (["--aggregate", "median"], "aggregate: mean -> median"),
                          (["--model", str(other_model)], f"model.name: {model_dir} -> {other_model}")):
        assert main(["detect", *common, "--output", str(distributed), *RAY, "--resume", "--frames", "3",
                     "--precision", "fp32", "--device", "cpu", *changed]) == 2  # the changed option given last
        assert said in capsys.readouterr().err
        assert _contents(tmp_path / "ray.jsonl.parts") == kept and not distributed.exists()
    assert _detect(*common, "--output", str(distributed), *RAY, "--resume") == 0

    err = capsys.readouterr().err
    assert f"12 inputs, {done} already in {tmp_path / 'ray.jsonl.parts'}, {12 - done} to score" in err
    assert f"ray: {counted(12 - done, 'input')} scored" in err
    _same_rows(local.read_text(), distributed.read_text())


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_on_its_own_ray_prints_no_token_notice_and_its_bar_counts_every_failure(model_dir, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    Image.fromarray(data.astronaut()[:64, :64]).save(folder / "good.png")
    for name in ("a", "b", "c"):
        (folder / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    command = [str(Path(sys.executable).with_name("clipforensics")), "detect", str(folder), "--model", str(model_dir),
               "--faces", "none", "--engine", "ray", "--replicas", "1", "--output", str(tmp_path / "out.jsonl")]

    # as a user starts it: without the RAY_AUTH_MODE this test process's own Ray set
    environment = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)

    assert done.returncode == 1, done.stderr[-3000:]
    assert "Token authentication" not in done.stderr
    assert re.findall(r"failed=(\d+)", done.stderr)[-1] == "3", done.stderr[-3000:]
    assert "ray: 4 inputs scored" in done.stderr and "3 failed ->" in done.stderr


def test_localize_on_ray_writes_the_local_rows_and_maps(mixed, tmp_path, same_arithmetic):
    torch.manual_seed(0)
    localizer = save_model(create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="linear", layer=1)).eval(),
                           tmp_path / "localizer")
    common = ["localize", str(mixed), "--model", str(localizer), "--frames", "2", "--precision", "fp32",
              "--device", "cpu", *same_arithmetic]

    assert main([*common, "--output-dir", str(tmp_path / "local")]) == 1  # the damaged file
    assert main([*common, "--output-dir", str(tmp_path / "ray"), *RAY]) == 1

    rows = [_rows_text((tmp_path / run / "results.jsonl").read_text()) for run in ("local", "ray")]
    assert rows[1] == rows[0].replace(str(tmp_path / "local"), str(tmp_path / "ray"))
    assert _header(tmp_path / "ray" / "results.jsonl") == _header(tmp_path / "local" / "results.jsonl")
    files = [sorted(p.relative_to(tmp_path / run) for p in (tmp_path / run).rglob("*")) for run in ("local", "ray")]
    assert files[1] == files[0] and Path("photos/cat.mask.png") in files[1]


def test_evaluate_on_ray_gives_the_local_metrics(model_dir, tmp_path, same_arithmetic):
    data_root = tmp_path / "data"
    rng = np.random.default_rng(1)
    for source, label in (("real", "youtube"), ("fake", "Deepfakes")):
        for video in range(3):
            for frame in range(2):
                path = data_root / "FF" / label / f"{source}{video}" / f"{frame:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    common = ["evaluate", "--model", str(model_dir), "--data", str(data_root / "FF"), "--precision", "fp32",
              "--device", "cpu", "--name", "run", *same_arithmetic]

    assert main([*common, "--output-dir", str(tmp_path / "local")]) == 0
    assert main([*common, "--output-dir", str(tmp_path / "ray"), *RAY]) == 0

    metrics = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("local", "ray")]
    assert metrics[1] == metrics[0]
    assert (tmp_path / "ray" / "predictions.csv").read_text() == (tmp_path / "local" / "predictions.csv").read_text()


def test_calls_are_small_enough_to_keep_every_replica_busy():
    assert inputs_per_call(2, replicas=2, batch_size=32) == 1  # two videos: one each
    assert inputs_per_call(400, replicas=2, batch_size=32) == 32  # a model call's worth
    assert inputs_per_call(40, replicas=2, batch_size=32) == 5


def test_the_ray_engine_without_ray_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    real_import = builtins.__import__

    def without_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_ray)

    status = main(["detect", str(tmp_path), "--model", "m", "--output", str(tmp_path / "o.jsonl"), *RAY])

    assert status == 2 and MISSING_RAY in capsys.readouterr().err


def test_the_ray_engine_needs_a_results_file_for_its_parts(model_dir, tmp_path, capsys):
    status = main(["detect", str(tmp_path), "--model", str(model_dir), *RAY])

    assert status == 2 and "give --output FILE" in capsys.readouterr().err


def test_inputs_named_by_fsspec_urls_give_the_rows_of_their_files(model_dir, mixed, local_rows, tmp_path,
                                                                  same_arithmetic):
    local, distributed = local_rows, tmp_path / "ray.jsonl"

    _detect(f"file://{mixed}", "--model", str(model_dir), "--output", str(distributed), *RAY, *same_arithmetic)

    assert _rows_text(distributed.read_text()) == _rows_text(local.read_text()).replace(f'"{mixed}',
                                                                                        f'"file://{mixed}')


def test_a_replica_that_cannot_start_stops_the_run_with_its_error(model_dir, mixed, tmp_path, capsys):
    out = tmp_path / "out.jsonl"

    status = _detect(str(mixed), "--model", str(model_dir), "--output", str(out), "--localize", str(tmp_path / "m"),
                     *RAY)

    assert status == 2 and "has no decoder" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "out.jsonl.parts").exists()
