"""What ``evaluate`` costs after the model has scored: the frame- and video-level tables (with their bootstrap
intervals, where the version has them) and the written outputs (predictions.csv, metrics.json, both reports and
their figures), on synthetic predictions.

The predictions: ``--videos`` videos of ``--frames`` frames each, in two datasets of one real and two fake
sources, a fake's p_fake drawn a little higher than a real's. Each step is timed ``--runs`` times; the median is
printed. Run it against two checkouts (``PYTHONPATH=...``) to compare them on one machine.

    python bench/evaluate_tables.py [--videos 1000] [--frames 10] [--runs 3]
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


def median_seconds(step, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = predictions(args.videos, args.frames)
    tables = median_seconds(lambda: Evaluation("detection", rows), args.runs)
    evaluation = Evaluation("detection", rows)
    with tempfile.TemporaryDirectory() as folder:
        written = median_seconds(lambda: write_evaluation(evaluation, folder, "bench"), args.runs)
    print(f"{len(rows)} frames, {args.videos} videos: tables {tables:.2f} s, outputs {written:.2f} s "
          f"(median of {args.runs})")


if __name__ == "__main__":
    main()
