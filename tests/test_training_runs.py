"""Whole training runs through the command line: resuming a killed run, and two-process DDP on CPU."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipforensics.hub.checkpoints import load_model

TINY = "model.backbone={width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 224}"


def _command(sample_faces: Path, out: Path, *overrides: str) -> list[str]:
    settings = [TINY, "model.weights=null", f"data.train=[{sample_faces}]", f"data.val=[{sample_faces}]",
                "data.augment=false", "data.num_workers=0", "optim.batch_size=8", "trainer.accelerator=cpu",
                "trainer.precision=32-true", f"trainer.output_dir={out}", *overrides]
    command = [str(Path(sys.executable).with_name("clipforensics")), "train"]
    for setting in settings:
        command += ["--set", setting]
    return command


def _rows(out: Path) -> list[dict]:
    rows = []
    for log in sorted((out / "logs").glob("version_*/metrics.csv")):
        with log.open() as file:
            rows += [dict(row, log=log.parent.name) for row in csv.DictReader(file)]
    return rows


def _validation(out: Path) -> dict[str, float]:
    last = [row for row in _rows(out) if row.get("val/video_auroc")][-1]
    return {key: float(value) for key, value in last.items() if key.startswith("val/") and value}


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
