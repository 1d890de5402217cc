"""What ``evaluate`` costs after the model has scored: the frame- and video-level tables (with their bootstrap
intervals, where the version has them) and the written outputs (predictions.csv, metrics.json, both reports and
their figures), on synthetic predictions.

The predictions: ``--videos`` videos of ``--frames`` frames each, in two datasets of one real and two fake
sources, a fake's p_fake drawn a little higher than a real's. Each step is timed ``--runs`` times; the median wall
time is printed, with the median CPU time of the process (less moved by other work on a shared machine). Run it
against two checkouts (``PYTHONPATH=...``) to compare them on one machine; ``--bootstrap N`` sets the replicates
(where the version draws intervals; its default otherwise).

    python bench/evaluate_tables.py [--videos 1000] [--frames 10] [--runs 3] [--bootstrap N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from clipforensics.evaluation import Evaluation, write_evaluation
from clipforensics.evaluation.predictions import Prediction


def predictions(videos: int, frames: int, seed: int = 0) -> list[Prediction]:
    rng = np.random.default_rng(seed)
    rows = []
    for video in range(videos):
        dataset = ("A", "B")[video % 2]
        source = ("real", "fake1", "fake2")[video // 2 % 3]
        label = int(source != "real")
        centre = rng.beta(2 + 2 * label, 4 - 2 * label)
        for frame in range(frames):
            p_fake = float(np.clip(centre + rng.normal(0, 0.05), 0, 1))
            rows.append(Prediction(f"{dataset}/{source}/{video}/{frame}.png", dataset, source, f"{dataset}-{video}",
                                   label, p_fake))
    return rows


def median_seconds(step, runs: int) -> str:
    """The median wall time of ``runs`` calls of ``step``, and their median CPU time."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return f"{statistics.median(wall):.2f} s (CPU {statistics.median(cpu):.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, metavar="N")
    args = parser.parse_args()
    rows = predictions(args.videos, args.frames)
    settings = {}
    if args.bootstrap is not None:
        from clipforensics.uncertainty import Bootstrap

        settings["bootstrap"] = Bootstrap(args.bootstrap)
    tables = median_seconds(lambda: Evaluation("detection", rows, **settings), args.runs)
    evaluation = Evaluation("detection", rows, **settings)
    with tempfile.TemporaryDirectory() as folder:
        written = median_seconds(lambda: write_evaluation(evaluation, folder, "bench"), args.runs)
    replicates = "" if args.bootstrap is None else f", --bootstrap {args.bootstrap}"
    print(f"{len(rows)} frames, {args.videos} videos{replicates}: tables {tables}, outputs {written} "
          f"(median of {args.runs})")


if __name__ == "__main__":
    main()
