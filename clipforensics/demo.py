"""An offline tour on built-in images: build, save and reload a detector, then score crops."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from .backbones import TINY_BACKBONE
from .checkpoints import save_detector
from .cli import main as cli_main
from .models.detector import create_detector
from .zoo import ZOO


def write_inputs(folder: Path) -> list[Path]:
    """The astronaut's face and a cat from scikit-image (public domain), and a damaged PNG."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    face = folder / "astronaut-face.png"
    Image.fromarray(data.astronaut()[20:240, 140:360]).save(face)
    cat = folder / "chelsea-cat.png"
    Image.fromarray(data.chelsea()).save(cat)
    damaged = folder / "damaged.png"
    damaged.write_bytes(face.read_bytes()[:300])
    return [face, cat, damaged]


def run(workdir: Path) -> int:
    torch.manual_seed(0)
    model_dir = workdir / "tiny-detector"
    save_detector(create_detector(TINY_BACKBONE), model_dir, provenance={"note": "random weights, demo only"})
    inputs = write_inputs(workdir / "inputs")
    print(f"Built a tiny detector with RANDOM weights in {model_dir}: its p_fake values mean nothing.")
    print("Published weights (need internet once, or pass a local path with --model):")
    for entry in ZOO.values():
        print(f"  {entry.name:<14} {entry.summary}")
    command = ["detect", *map(str, inputs), "--model", str(model_dir), "--faces", "none"]
    print("\n$ clipforensics " + " ".join(command))
    status = cli_main(command)
    print(f"(exit status {status}: 1 because damaged.png could not be decoded; the other rows are intact)")
    return 0 if status == 1 else 1
