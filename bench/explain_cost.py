"""What an explanation costs: ``explain`` (one forward with the attentions recorded, one backward) against plain
scoring of the same batch, per face, at CLIP ViT-B/16 and 224 px, fp32 and bf16 (autocast); and peak memory.

Random weights (seeded), LinearNorm head, eval mode. Each precision's timings come from one fresh process that
runs plain, rollout and Grad-CAM in turn, round after round (the order rotating), so that each ratio compares
batches timed side by side under the same load: the figure is the median of the rounds' ratios, with their
range. Both wall time and the process's CPU time are taken (on a shared machine the latter is the steadier; with
``--threads 1`` it counts no waiting threads). Peak memory (VmHWM) comes from a fresh process per (mode,
precision). Target: explain at most 3x the plain forward time per face.

    python bench/explain_cost.py [--batch-size 8] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOWER = "openai/clip-vit-base-patch16"
MODES = ("plain", "rollout", "gradcam")
PRECISIONS = ("fp32", "bf16")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _scorer(batch_size: int):
    """What scores one batch in a mode, the model and the batch made once."""
    import torch

    from clipforensics.models.explanation import explain
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    torch.manual_seed(0)
    model = create_model(ModelConfig(TOWER)).eval()
    pixels = torch.randn(batch_size, 3, 224, 224)

    def once(mode: str) -> None:
        if mode == "plain":
            with torch.inference_mode():
                model(pixels)
        else:
            explain(model, pixels, mode)

    return once


def timings(precision: str, batch_size: int, rounds: int) -> dict:
    """Per mode and clock, each round's seconds per face."""
    import torch

    from clipforensics.inference.runtime import autocast

    once = _scorer(batch_size)
    seconds = {mode: {clock: [] for clock in CLOCKS} for mode in MODES}
    with autocast(torch.device("cpu"), precision):
        for mode in MODES:
            once(mode)
        for number in range(rounds):
            for mode in MODES[number % len(MODES):] + MODES[: number % len(MODES)]:
                start = {clock: read() for clock, read in CLOCKS.items()}
                once(mode)
                for clock, read in CLOCKS.items():
                    seconds[mode][clock].append((read() - start[clock]) / batch_size)
    return seconds


def peak_memory(mode: str, precision: str, batch_size: int) -> float:
    import torch

    from clipforensics.inference.runtime import autocast
    from rss import peak_rss_mb, reset_peak_rss

    once = _scorer(batch_size)
    with autocast(torch.device("cpu"), precision):
        once(mode)
        reset_peak_rss()
        once(mode)
    return peak_rss_mb()


def _child(arguments: list[str], threads: int | None) -> object:
    command = [sys.executable, __file__, "--child", *arguments]
    if threads:
        command += ["--threads", str(threads)]
    ran = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(ran.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        what, *rest = args.child
        answer = timings(rest[0], args.batch_size, args.rounds) if what == "time" else \
            peak_memory(rest[0], rest[1], args.batch_size)
        print(json.dumps(answer))
        return 0

    from rss import cpu_name

    print(f"CPU: {cpu_name()}; {TOWER}, batch {args.batch_size}, {args.rounds} rounds, "
          f"{args.threads or 'default'} threads")
    print(f"{'mode':<9}{'precision':<10}{'wall ms/face':>13}{'vs plain (range)':>20}{'cpu ms/face':>12}"
          f"{'vs plain (range)':>20}{'peak RSS MB':>13}")
    for precision in PRECISIONS:
        seconds = _child(["time", precision], args.threads)
        for mode in MODES:
            cells = []
            for clock in CLOCKS:
                ratios = [a / b for a, b in zip(seconds[mode][clock], seconds["plain"][clock])]
                spread = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                cells.append(f"{1000 * statistics.median(seconds[mode][clock]):>12.0f}{spread:>20}")
            memory = _child(["memory", mode, precision], args.threads)
            print(f"{mode:<9}{precision:<10}{''.join(cells)}{memory:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
