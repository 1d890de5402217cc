"""An offline tour on built-in inputs: a detector is built, saved and reloaded, then photos, a video
and a damaged file go through face detection, alignment and scoring; a localizer then maps a face."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .media import write_video
from .models.backbones import TINY_BACKBONE
from .hub.checkpoints import save_model
from .cli import main as cli_main
from .models.factory import create_model
from .models.model import ModelConfig
from .hub.zoo import ZOO


def write_inputs(folder: Path) -> list[Path]:
    """scikit-image's public-domain astronaut and cat, a short video of the astronaut, a damaged PNG."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    cat = folder / "chelsea-cat.png"
    Image.fromarray(data.chelsea()).save(cat)
    video = folder / "astronaut-walk.mp4"
    write_video(_walk(data.astronaut(), frames=24), video, fps=12)
    damaged = folder / "damaged.png"
    damaged.write_bytes(photo.read_bytes()[:300])
    return [photo, cat, video, damaged]


def _walk(picture: np.ndarray, frames: int) -> list[np.ndarray]:
    canvas = np.full((360, 640, 3), 80, dtype=np.uint8)
    shots = []
    for index in range(frames):
        shot = canvas.copy()
        shot[20:340, 40 + 8 * index : 360 + 8 * index] = picture[:320, 96:416]
        shots.append(shot)
    return shots


def run(workdir: Path) -> int:
    torch.manual_seed(0)
    model_dir = save_model(create_model(ModelConfig(TINY_BACKBONE)), workdir / "tiny-detector",
                           provenance={"note": "random weights, demo only"})
    inputs = write_inputs(workdir / "inputs")
    print(f"A tiny detector with RANDOM weights was saved in {model_dir}: its p_fake values mean nothing.")
    print("Published weights (fetched once with internet, or pass a local path to --model):")
    for entry in ZOO.values():
        print(f"  {entry.name:<14} {entry.summary}")
    results = workdir / "results.csv"
    command = ["detect", *map(str, inputs), "--model", str(model_dir), "--frames", "8",
               "--output", str(results), "--annotate", str(workdir / "annotated")]
    print("\n$ clipforensics " + " ".join(command))
    status = cli_main(command)
    with results.open() as file:
        for row in csv.DictReader(file):
            print(f"  {Path(row['path']).name:<20} p_fake={row['p_fake'] or '-':<20.20} faces={row['faces']:<3} "
                  f"frames={row['frames']:<3} {row['error'] or row['note'] or ''}")
    print(f"\nRows: {results}; faces drawn with their scores: {workdir / 'annotated'}")
    print(f"Exit status {status}: 1 because the cat has no face and damaged.png cannot be decoded; "
          "every input still has its row.")
    return 0 if status == 1 and _localize(workdir, inputs) == 0 else 1


def _localize(workdir: Path, inputs: list[Path]) -> int:
    """A tiny DeCLIP-style localizer (random weights) maps the astronaut's face, warped back onto the photo."""
    torch.manual_seed(0)
    model_dir = save_model(create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="conv-4", layer=1)), workdir / "tiny-localizer",
                           provenance={"note": "random weights, demo only"})
    command = ["localize", str(inputs[0]), "--faces", "auto", "--model", str(model_dir), "--output-dir",
               str(workdir / "maps")]
    print("\n$ clipforensics " + " ".join(command))
    status = cli_main(command)
    print(f"Mask and overlay (random weights: the map means nothing): {workdir / 'maps'}")
    return status
