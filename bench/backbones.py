"""GenD's three backbones side by side: images/s and peak memory of the L-sized towers at 224 px, fp32 and bf16.

Towers with random weights (seeded), as GenD runs them: CLIP ViT-L/14 (16 x 16 patches), DINOv3 ViT-L/16
(14 x 14 patches and 4 registers), PE-Core L/14 (16 x 16 patches, its 24 x 24 position table resampled), each
with GenD's LinearNorm head, in eval mode, on one random batch, through ``Predictor.predict_tensor`` as inference
runs them (bf16: the towers' linears kept in bf16, under autocast). Each (tower, precision) runs in a fresh
process, so peak memory (VmHWM) is that run's alone; ratios are to CLIP in the same precision, and to fp32 for the
same tower. Each process first measures this CPU's fp32 and bf16 matmul peaks, and reports its time against the
matmul bound (the batch's matmul FLOPs at the precision's peak, ``bench/bound.py``): bf16 pays only where the CPU
has the matrix units for it.

    python bench/backbones.py [--batch-size 4] [--repeats 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOWERS = {
    "CLIP ViT-L/14": "openai/clip-vit-large-patch14",
    "DINOv3 ViT-L/16": "facebook/dinov3-vitl16-pretrain-lvd1689m",
    "PE-Core L/14": "vit_pe_core_large_patch14_336",
}
PRECISIONS = ("fp32", "bf16")


def run_one(name: str, precision: str, batch_size: int, repeats: int) -> dict:
    """In this process: build the tower, warm up, time ``repeats`` batches; peak RSS over the timed part."""
    import torch
    from bound import config_flops, matmul_peaks
    from rss import peak_rss_mb, reset_peak_rss

    from clipforensics.inference.predictor import Predictor
    from clipforensics.inference.runtime import release_freed_memory
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    peaks = matmul_peaks()
    torch.manual_seed(0)
    config = ModelConfig(TOWERS[name])
    predictor = Predictor(create_model(config).eval(), device="cpu", precision=precision)
    pixels = torch.randn(batch_size, 3, 224, 224)
    weights_mb = sum(p.numel() * p.element_size() for p in predictor.model.parameters()) / 2**20
    predictor.predict_tensor(pixels)
    release_freed_memory()  # the float32 model a bf16 one was converted from (load reads bf16 straight)
    reset_peak_rss()
    start = time.perf_counter()
    for _ in range(repeats):
        predictor.predict_tensor(pixels)
    seconds = time.perf_counter() - start
    bound = repeats * batch_size * config_flops(config.backbone) / (peaks[precision] * 1e9)
    return {"tower": name, "precision": precision, "images_per_s": repeats * batch_size / seconds,
            "peak_rss_mb": peak_rss_mb(), "weights_mb": weights_mb, "peak_gflops": peaks[precision],
            "bound_ratio": seconds / bound}


def matmul_ratio(size: int = 2048, repeats: int = 10) -> float:
    """bf16 over fp32 matmul throughput on this CPU (above 1: bf16 is faster)."""
    import torch

    def seconds(dtype: torch.dtype) -> float:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        return time.perf_counter() - start

    return seconds(torch.float32) / seconds(torch.bfloat16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("TOWER", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(*args.child, args.batch_size, args.repeats)))
        return 0

    from rss import cpu_name

    print(f"CPU: {cpu_name()}; bf16/fp32 matmul throughput on this CPU: {matmul_ratio():.2f}x")
    print(f"batch {args.batch_size} x {args.repeats} timed batches at 224 px, random weights, each run a fresh process")
    rows = []
    for precision in PRECISIONS:
        for name in TOWERS:
            child = subprocess.run([sys.executable, __file__, "--child", name, precision, "--batch-size",
                                    str(args.batch_size), "--repeats", str(args.repeats)],
                                   capture_output=True, text=True, check=True)
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    by = {(row["tower"], row["precision"]): row for row in rows}
    print(f"{'tower':<18}{'precision':<11}{'images/s':>9}{'vs CLIP':>9}{'vs fp32':>9}{'peak GFLOP/s':>13}"
          f"{'x bound':>9}{'peak RSS MB':>13}{'weights MB':>12}")
    for row in rows:
        clip = by[("CLIP ViT-L/14", row["precision"])]["images_per_s"]
        fp32 = by[(row["tower"], "fp32")]["images_per_s"]
        print(f"{row['tower']:<18}{row['precision']:<11}{row['images_per_s']:>9.2f}"
              f"{row['images_per_s'] / clip:>8.2f}x{row['images_per_s'] / fp32:>8.2f}x"
              f"{row['peak_gflops']:>13.0f}{row['bound_ratio']:>8.2f}x"
              f"{row['peak_rss_mb']:>13.0f}{row['weights_mb']:>12.0f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
