"""The shipped presets and the README's Training commands run as they are on what `clipforensics
preprocess` writes (a tiny random backbone and one short epoch set through --set)."""

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

import clipforensics
from clipforensics.cli import main

from .videos import moving_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
SIZES = ["model.backbone={width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 224}",
         "model.weights=null", "trainer.epochs=1", "data.num_workers=0", "optim.batch_size=8"]
SOURCES = {"FF": ("DF", "F2F", "FS", "NT", "real"), "CDFv2": ("Celeb-real", "Celeb-synthesis")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """``data/`` as the presets expect it, written by preprocess from short videos of the astronaut; the
    FF fakes with manipulation masks (what DeCLIP's preset needs)."""
    root = tmp_path_factory.mktemp("presets")
    for dataset, sources in SOURCES.items():
        for source in sources:
            videos = root / "raw" / dataset / source
            videos.mkdir(parents=True)
            write_video(videos / ("000.mp4" if "real" in source else "000_001.mp4"), moving_frames(4))
            arguments = ["preprocess", str(videos), "--output", str(root / "data"), "--dataset", dataset,
                         "--frames", "3"]
            if dataset == "FF" and source != "real":
                masks = root / "raw" / "masks" / source
                masks.mkdir(parents=True)
                frames = [np.zeros_like(frame) for frame in moving_frames(4)]
                for frame in frames:
                    frame[120:260, 140:300] = 255
                write_video(masks / "000_001.mp4", frames)
                arguments += ["--masks", str(masks)]
            assert main(arguments) == 0
    return root


def _train(arguments: list[str]) -> list[str]:
    command = list(arguments)
    for setting in SIZES:
        command += ["--set", setting]
    return command


@pytest.mark.parametrize("preset", ["lnclip-l14-ffpp.yaml", "gend-clip-l14-ffpp.yaml"])
def test_the_detection_presets_train_on_preprocess_output(workdir, preset, monkeypatch):
    monkeypatch.chdir(workdir)

    status = main(_train(["train", "--config", str(ROOT / "configs" / preset)]))

    assert status == 0
    assert (workdir / "runs" / preset.removesuffix(".yaml") / "last" / "model.safetensors").is_file()


@pytest.mark.parametrize(("preset", "family"), [("gend-dinov3-l-ffpp.yaml", "family: dinov3, registers: 4"),
                                                ("gend-pe-l-ffpp.yaml", "family: pe, position_grid: 6")])
def test_gends_dinov3_and_pe_presets_train_on_preprocess_output(workdir, preset, family, monkeypatch):
    monkeypatch.chdir(workdir)
    tiny = f"model.backbone={{width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 64, {family}}}"

    status = main(_train(["train", "--config", str(ROOT / "configs" / preset)]) + ["--set", tiny])

    assert status == 0
    saved = workdir / "runs" / preset.removesuffix(".yaml") / "last"
    assert clipforensics.load(saved).model.config.backbone.family == family.split(",")[0].split()[1]


def test_the_declip_preset_trains_on_preprocess_output_with_masks(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    data = "[data/FF/DF, data/FF/F2F, data/FF/real]"

    status = main(_train(["train", "--config", str(ROOT / "configs" / "declip-l14-conv20.yaml"),
                          "--set", f"data.train={data}", "--set", f"data.val={data}", "--set", "model.layer=1"]))

    assert status == 0
    assert (workdir / "runs" / "declip-l14-conv20" / "best" / "model.safetensors").is_file()


def test_the_readme_training_commands_run_as_written(workdir, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "data").symlink_to(workdir / "data")
    monkeypatch.chdir(tmp_path)
    section = (ROOT / "README.md").read_text().split("## Training", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    commands = [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("clipforensics")]

    statuses = [main(_train([*command[1:], "--set", "trainer.devices=1"])) for command in commands]

    assert commands and statuses == [0] * len(commands)
    assert len(list((tmp_path / "runs").glob("*/last/model.safetensors"))) == len(commands)
