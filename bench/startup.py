"""Start-up and model loading: how long a user waits before anything happens, and what loading costs.

What is measured, each in a fresh interpreter (``--only`` runs one case in a subprocess):

* ``clipforensics --help``, ``--version`` and ``zoo``: wall time of the installed command, against the
  floor a command that imports torch and transformers pays (``python -c "import torch, transformers"``:
  what ``--help`` cost when the package imported them at start-up) and a bare ``python -c pass``.
* ``load()`` of a ViT-L/14-sized GenD checkpoint (random weights, written by this script in GenD's
  Hugging Face layout: ``config.json`` + ``model.safetensors``, 1.2 GB): wall time and peak resident
  memory above the interpreter with torch and transformers already imported, as a ratio of the weights'
  size. The baseline is the previous way of loading, run side by side: the model built with random
  weights, the file read by ``safetensors.torch.load_file``, the tensors copied in by ``load_state_dict``.
  ``load(precision="bf16")`` too, which reads the same float32 file straight into the bf16 tensors a model
  running in bf16 keeps.

Targets: ``--help`` under 1 s; load RSS at most 1.35x the weights; load no slower than the baseline; bf16 load at
most 1.5x fp32's.

    python bench/startup.py [--runs 5] [--keep DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rss import cpu_name

HERE = Path(__file__).resolve().parent
COMMAND = Path(sys.executable).with_name("clipforensics")
TARGETS = {"help_s": 1.0, "rss_ratio": 1.35, "bf16_load_ratio": 1.5}
LOADS = {"baseline": "baseline (random init, load_file, copy)", "project": "clipforensics.load",
         "project-bf16": "clipforensics.load, bf16"}


def command_times(runs: int) -> dict[str, float]:
    """Median wall time of each command over ``runs`` fresh processes."""
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch, transformers'": [sys.executable, "-c", "import torch, transformers"],
        "clipforensics --help": [str(COMMAND), "--help"],
        "clipforensics --version": [str(COMMAND), "--version"],
        "clipforensics zoo": [str(COMMAND), "zoo"],
    }
    times = {}
    for name, argv in cases.items():
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            samples.append(time.perf_counter() - start)
        times[name] = statistics.median(samples)
    return times


def write_gend_checkpoint(folder: Path) -> int:
    """A random ViT-L/14 GenD folder; returns the weights' size in bytes."""
    import torch
    from safetensors.torch import save_file

    from clipforensics.models.backbones import known_backbone
    from clipforensics.models.model import ForensicsModel, ModelConfig

    with torch.device("meta"):
        shapes = ForensicsModel(ModelConfig(known_backbone("openai/clip-vit-large-patch14"))).state_dict()
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, tensor in shapes.items():
        name = key.replace("backbone.vision.", "feature_extractor.vision_model.").replace("head.", "model.linear.")
        state[name] = torch.randn(tensor.shape, generator=generator) * 0.02
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "GenD", "backbone": "openai/clip-vit-large-patch14",
                                                    "head": "LinearNorm"}))
    return sum(tensor.numel() * tensor.element_size() for tensor in state.values())


def measure_load(case: str, folder: Path) -> dict[str, float]:
    """In this process: RSS with torch and transformers imported, then the load, its time and peak."""
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from rss import current_rss_mb, peak_rss_mb, reset_peak_rss

    import clipforensics
    from clipforensics.hub.checkpoints import gend_filter
    from clipforensics.models.backbones import known_backbone
    from clipforensics.models.model import ForensicsModel, ModelConfig

    reset_peak_rss()
    base = current_rss_mb()
    start = time.perf_counter()
    if case.startswith("project"):
        precision = "bf16" if case.endswith("bf16") else "fp32"
        model = clipforensics.load(folder, device="cpu", precision=precision).model
    else:
        from safetensors.torch import load_file

        model = ForensicsModel(ModelConfig(known_backbone("openai/clip-vit-large-patch14")))
        model.load_state_dict(gend_filter(load_file(str(folder / "model.safetensors"))))
        model.eval()
    seconds = time.perf_counter() - start
    assert next(model.parameters()).device.type == "cpu"
    return {"seconds": seconds, "base_mb": base, "peak_above_mb": peak_rss_mb() - base}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per command timing")
    parser.add_argument("--keep", type=Path, help="write (or reuse) the checkpoint here instead of a temporary folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", choices=LOADS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure_load(args.only, args.folder)))
        return 0

    print(f"CPU: {cpu_name()}", flush=True)
    times = command_times(args.runs)
    for name, seconds in times.items():
        print(f"{name:<42} {seconds:6.2f} s")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="clipforensics-startup-"))
    try:
        weights = (folder / "model.safetensors").stat().st_size if (folder / "model.safetensors").is_file() \
            else write_gend_checkpoint(folder)
        loads = {case: json.loads(subprocess.run([sys.executable, __file__, "--only", case, "--folder", str(folder)],
                                                 check=True, capture_output=True, text=True).stdout)
                 for case in LOADS}
    finally:
        if args.keep is None:
            shutil.rmtree(folder)
    print(f"\nload() of a ViT-L/14 GenD checkpoint, {weights / 1e9:.2f} GB of weights "
          f"(RSS with torch + transformers imported: {loads['project']['base_mb']:.0f} MB)")
    print(f"{'':<44}{'seconds':>8} {'peak RSS above':>15} {'x weights':>10}")
    for case, title in LOADS.items():
        figures = loads[case]
        ratio = figures["peak_above_mb"] * 2**20 / weights
        figures["rss_ratio"] = ratio
        print(f"{title:<44}{figures['seconds']:8.2f} {figures['peak_above_mb']:12.0f} MB {ratio:9.2f}x")
    met = {
        "help under 1 s": times["clipforensics --help"] < TARGETS["help_s"],
        "load RSS <= 1.35x the weights": loads["project"]["rss_ratio"] <= TARGETS["rss_ratio"],
        "load no slower than the baseline": loads["project"]["seconds"] <= loads["baseline"]["seconds"],
        "bf16 load <= 1.5x fp32's": loads["project-bf16"]["seconds"]
        <= TARGETS["bf16_load_ratio"] * loads["project"]["seconds"],
    }
    print("\n" + "\n".join(f"target {'met' if ok else 'MISSED'}: {name}" for name, ok in met.items()))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "commands": times, "weights_bytes": weights,
                                         "load": loads, "targets_met": met}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
