"""Whole training runs through the command line: resuming a killed run, run folders never rewritten by
another configuration, which model to use said truthfully, no Lightning banners, and two-process DDP on CPU."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipforensics.cli import main
from clipforensics.hub.checkpoints import load_model

TINY = "model.backbone={width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 224}"
PRESET = Path(__file__).resolve().parents[1] / "configs" / "lnclip-l14-ffpp.yaml"


def _arguments(sample_faces: Path, out: Path, *overrides: str, val: Path | None = None) -> list[str]:
    settings = [TINY, "model.weights=null", f"data.train=[{sample_faces}]", f"data.val=[{val or sample_faces}]",
                "data.augment=false", "data.num_workers=0", "optim.batch_size=8", "trainer.accelerator=cpu",
                "trainer.precision=32-true", f"trainer.output_dir={out}", "trainer.epochs=1", *overrides]
    arguments = ["train", "--config", str(PRESET)]
    for setting in settings:
        arguments += ["--set", setting]
    return arguments


def _command(sample_faces: Path, out: Path, *overrides: str) -> list[str]:
    return [str(Path(sys.executable).with_name("clipforensics")), *_arguments(sample_faces, out, *overrides)]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(out: Path) -> list[dict]:
    rows = []
    for log in sorted((out / "logs").glob("version_*/metrics.csv")):
        with log.open() as file:
            rows += [dict(row, log=log.parent.name) for row in csv.DictReader(file)]
    return rows


def _validation(out: Path) -> dict[str, float]:
    last = [row for row in _rows(out) if row.get("val/video_auroc")][-1]
    return {key: float(value) for key, value in last.items() if key.startswith("val/") and value}


@pytest.fixture(scope="module")
def finished_run(sample_faces, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A one-epoch run of the command as a user types it (a process of its own) and what it printed: the tests
    that act on a finished run act on copies of it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    done = subprocess.run(_command(sample_faces, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_a_killed_run_resumes_from_its_last_checkpoint(sample_faces, tmp_path):
    out = tmp_path / "run"
    command = _command(sample_faces, out, "trainer.epochs=4", "trainer.devices=1")
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (out / "checkpoints" / "last.ckpt").is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert (out / "checkpoints" / "last.ckpt").is_file(), "no checkpoint before the kill"

    subprocess.run(command, check=True, capture_output=True, timeout=300)

    epochs_after_resume = {int(row["epoch"]) for row in _rows(out) if row["log"] == "version_1" and row.get("epoch")}
    assert epochs_after_resume and min(epochs_after_resume) >= 1, "the resumed run started again from epoch 0"
    _, provenance = load_model(out / "last")
    assert provenance["epochs_trained"] == 4


def test_a_folder_holding_a_run_of_another_configuration_is_refused_and_left_as_it_is(sample_faces, finished_run,
                                                                                    tmp_path, capsys):
    out = _copy(finished_run[0], tmp_path)
    before = _files(out)

    status = main(_arguments(sample_faces, out, "model.head=linear", "loss.uniformity=0.5"))

    assert status == 2
    message = capsys.readouterr().err
    assert str(out) in message and "model.head" in message and "loss.uniformity" in message and "--fresh" in message
    assert _files(out) == before


def test_fresh_starts_a_numbered_run_beside_the_one_there(sample_faces, finished_run, tmp_path):
    out = _copy(finished_run[0], tmp_path)
    before = _files(out)

    status = main([*_arguments(sample_faces, out, "model.head=linear"), "--fresh"])

    assert status == 0
    assert _files(out) == before
    trained, _ = load_model(tmp_path / "run-2" / "last")
    assert trained.config.head == "linear"


def test_the_same_command_leaves_a_finished_run_untouched_and_more_epochs_continue_it(sample_faces, finished_run,
                                                                                      tmp_path, capsys):
    out = _copy(finished_run[0], tmp_path)
    before = _files(out)

    again = main(_arguments(sample_faces, out))
    unchanged = _files(out) == before
    longer = main(_arguments(sample_faces, out, "trainer.epochs=2"))

    assert (again, longer) == (0, 0) and unchanged
    assert "already finished" in capsys.readouterr().err
    _, provenance = load_model(out / "last")
    assert provenance["epochs_trained"] == 2


def test_without_a_best_model_the_run_says_to_use_the_last_one_and_why(sample_faces, real_faces, tmp_path, capsys):
    out = tmp_path / "run"

    status = main(_arguments(sample_faces, out, val=real_faces))

    assert status == 0
    assert (out / "last" / "model.safetensors").is_file() and not (out / "best").exists()
    said = capsys.readouterr().err.splitlines()[-1]
    assert f"use {out / 'last'}" in said and "never a number" in said and str(out / "best") not in said


def test_a_run_with_a_best_model_says_to_use_it(finished_run):
    out, done = finished_run

    assert f"use {out / 'best'}" in done.stderr.splitlines()[-1]


def test_a_run_prints_no_lightning_tips_or_banners_and_counts_epochs_from_one(finished_run):
    _, done = finished_run

    printed = done.stdout + done.stderr
    for banner in ("Tip:", "litlogger", "litmodels", "GPU available", "TPU available", "Total params", "v_num"):
        assert banner not in printed
    assert "Epoch 1/1" in printed and "Epoch 0" not in printed


@pytest.mark.slow
def test_two_process_ddp_on_cpu_trains_on_paired_batches_and_gathers_the_same_validation_metrics(
    sample_faces, tmp_path
):
    frozen = ["optim.lr=0", "optim.min_lr=0", "trainer.epochs=1"]  # same model in both runs: metrics must agree
    frozen += ["data.paired=true"]  # the paired batch sampler is sharded by the run itself, not by Lightning
    single, ddp = tmp_path / "single", tmp_path / "ddp"

    subprocess.run(_command(sample_faces, single, *frozen, "trainer.devices=1"), check=True, capture_output=True,
                   timeout=300)
    done = subprocess.run(_command(sample_faces, ddp, *frozen, "trainer.devices=2", "trainer.strategy=ddp"),
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert any(row.get("train/loss") for row in _rows(ddp))
    assert (ddp / "best" / "model.safetensors").is_file()
    expected, gathered = _validation(single), _validation(ddp)
    assert gathered.keys() == expected.keys()
    for key, value in expected.items():
        assert gathered[key] == pytest.approx(value, abs=1e-6), key
