"""What an explanation costs: ``explain`` (one forward with the attentions recorded, one backward) against plain
scoring of the same batch, per face, at CLIP ViT-B/16 and 224 px, fp32 and bf16 (autocast); and peak memory.

Random weights (seeded), LinearNorm head, eval mode. Each (mode, precision) runs in a fresh process, so peak
memory (VmHWM) is that run's alone; the ratio is to plain scoring in the same precision. Target: explain at most
3x the plain forward time per face.

    python bench/explain_cost.py [--batch-size 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOWER = "openai/clip-vit-base-patch16"
MODES = ("plain", "rollout", "gradcam")
PRECISIONS = ("fp32", "bf16")


def run_one(mode: str, precision: str, batch_size: int, repeats: int) -> dict:
    import torch

    from clipforensics.inference.runtime import autocast
    from clipforensics.models.explanation import explain
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig
    from rss import peak_rss_mb, reset_peak_rss

    torch.manual_seed(0)
    model = create_model(ModelConfig(TOWER)).eval()
    pixels = torch.randn(batch_size, 3, 224, 224)

    def once() -> None:
        if mode == "plain":
            with torch.inference_mode():
                model(pixels)
        else:
            explain(model, pixels, mode)

    with autocast(torch.device("cpu"), precision):
        once()
        reset_peak_rss()
        start = time.perf_counter()
        for _ in range(repeats):
            once()
        seconds = time.perf_counter() - start
    return {"mode": mode, "precision": precision, "ms_per_face": 1000 * seconds / (repeats * batch_size),
            "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(*args.child, args.batch_size, args.repeats)))
        return 0

    from rss import cpu_name

    print(f"CPU: {cpu_name()}; {TOWER}, batch {args.batch_size} x {args.repeats} timed batches, each a fresh process")
    print(f"{'mode':<10}{'precision':<11}{'ms/face':>9}{'vs plain':>10}{'peak RSS MB':>13}")
    for precision in PRECISIONS:
        plain = None
        for mode in MODES:
            child = subprocess.run([sys.executable, __file__, "--child", mode, precision, "--batch-size",
                                    str(args.batch_size), "--repeats", str(args.repeats)],
                                   capture_output=True, text=True, check=True)
            row = json.loads(child.stdout.strip().splitlines()[-1])
            plain = plain or row
            ratio = row["ms_per_face"] / plain["ms_per_face"]
            print(f"{mode:<10}{precision:<11}{row['ms_per_face']:>9.1f}{ratio:>9.2f}x{row['peak_rss_mb']:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
