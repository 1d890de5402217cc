"""The Ray engine against the local one, on this machine: what spreading inputs over model replicas costs, and
what dynamic scheduling gains over static shards.

* Crops: the same face crops (``--faces none``; the sample faces of ../shared, tiled and flipped up to
  ``--crops``, or generated ones when ../shared is absent) through ``detect`` on the local engine (one
  process, every core) and on Ray with 2 replicas (one CPU each) on a Ray already started by this script, as
  a cluster is; then the same Ray run from a fresh command that starts Ray itself. The overhead is the ratio
  of wall times (target: at most 1.25x the local time on 2 cores). Both outputs must hold the same rows
  (scores within 1e-5: a model call's fp32 result depends on its batch and threads).
* Videos: a long video first, then short ones (``--faces none --sampler all``), on 2 workers of one CPU each:
  Ray's replicas take the next video when done, against static shards (every 2nd input per process, as the
  Fabric sharding this engine replaced did, simulated by two local processes on ``@list`` files): the time
  to finish. Two videos alone would give both the same split, so short videos follow the long one.

ViT-B/16-sized detector with random weights (seeded), fp32, on CPU.

    python bench/ray_engine.py [--crops 400] [--long-frames 64] [--short-videos 7] [--short-frames 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rss import cpu_name

SAMPLE_FACES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "faces"
BACKBONE = "openai/clip-vit-base-patch16"
TARGET_OVERHEAD = 1.25
TOLERANCE = 1e-5
REPLICAS = 2
COMMAND = str(Path(sys.executable).with_name("clipforensics"))


def make_model(folder: Path) -> Path:
    import torch

    from clipforensics.hub.checkpoints import save_model
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    torch.manual_seed(0)
    return save_model(create_model(ModelConfig(BACKBONE)).eval(), folder)


def make_crops(folder: Path, count: int) -> Path:
    """``count`` 224x224 face crops: the sample faces (and their mirror images), repeated; noise without them."""
    folder.mkdir(parents=True)
    faces = sorted(SAMPLE_FACES.rglob("*.png")) if SAMPLE_FACES.is_dir() else []
    rng = np.random.default_rng(0)
    for index in range(count):
        if faces:
            image = Image.open(faces[index % len(faces)]).convert("RGB").resize((224, 224))
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if (index // len(faces)) % 2 else image
        else:
            image = Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
        image.save(folder / f"{index:04d}.png")
    return folder


def make_videos(folder: Path, long_frames: int, short_videos: int, short_frames: int) -> list[Path]:
    """224x224 H.264 clips of moving noise: the long one first."""
    import av

    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    videos = []
    for index, frames in enumerate([long_frames] + [short_frames] * short_videos):
        path = folder / f"{index:02d}-{frames}f.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 224, 224, "yuv420p"
            for _ in range(frames):
                picture = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            container.mux(stream.encode())
        videos.append(path)
    return videos


def timed_main(arguments: list[str]) -> float:
    from clipforensics.cli import main

    start = time.perf_counter()
    status = main(arguments)
    if status != 0:
        raise SystemExit(f"clipforensics {' '.join(arguments)} exited {status}")
    return time.perf_counter() - start


def timed_processes(commands: list[list[str]], threads: int | None = None) -> float:
    """Wall time until every command, started together, is done."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    start = time.perf_counter()
    running = [subprocess.Popen([COMMAND, *command], env=env, stderr=subprocess.DEVNULL) for command in commands]
    if any(process.wait() != 0 for process in running):
        raise SystemExit(f"a command failed: {commands}")
    return time.perf_counter() - start


def same_rows(one: Path, two: Path) -> float:
    """The largest score difference between two results files with the same rows (raises when they differ)."""
    rows = [[json.loads(line) for line in path.read_text().splitlines()] for path in (one, two)]
    if [row["path"] for row in rows[0]] != [row["path"] for row in rows[1]]:
        raise SystemExit(f"{one} and {two} hold different inputs")
    return max(abs(a["p_fake"] - b["p_fake"]) for a, b in zip(*rows))


def benchmark(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        return measure(args, work)
    finally:
        shutil.rmtree(work)


def measure(args: argparse.Namespace, work: Path) -> int:
    import ray
    import torch

    started, load_before = time.perf_counter(), os.getloadavg()[0]
    model = make_model(work / "model")
    crops = make_crops(work / "crops", args.crops)
    videos = make_videos(work / "videos", args.long_frames, args.short_videos, args.short_frames)
    common = ["--model", str(model), "--faces", "none", "--precision", "fp32", "--device", "cpu"]
    ray_options = ["--engine", "ray", "--replicas", str(REPLICAS), "--cpus-per-worker", "1"]

    local_s = timed_main(["detect", str(crops), *common, "--output", str(work / "local.jsonl")])
    ray.init(address="local", num_cpus=REPLICAS, include_dashboard=False, log_to_driver=False)
    try:
        ray_s = timed_main(["detect", str(crops), *common, "--output", str(work / "ray.jsonl"), *ray_options])
        video_list = work / "videos.txt"
        video_list.write_text("".join(f"{path}\n" for path in videos))
        dynamic_s = timed_main(["detect", f"@{video_list}", *common, "--sampler", "all", "--output",
                                str(work / "videos-ray.jsonl"), *ray_options])
    finally:
        ray.shutdown()
    cold_s = timed_processes([["detect", str(crops), *common, "--output", str(work / "ray-cold.jsonl"),
                               *ray_options]])
    shards = []
    for rank in range(REPLICAS):
        (work / f"shard-{rank}.txt").write_text("".join(f"{path}\n" for path in videos[rank::REPLICAS]))
        shards.append(["detect", f"@{work / f'shard-{rank}.txt'}", *common, "--sampler", "all", "--output",
                       str(work / f"videos-shard-{rank}.jsonl")])
    static_s = timed_processes(shards, threads=1)
    difference = max(same_rows(work / "local.jsonl", work / name) for name in ("ray.jsonl", "ray-cold.jsonl"))

    overhead, cold = ray_s / local_s, cold_s / local_s
    frames = [args.long_frames] + [args.short_frames] * args.short_videos
    print(f"\n{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, ray {ray.__version__}; "
          f"ViT-B/16 random weights, fp32, --faces none")
    print(f"\n{args.crops} face crops                          wall s   crops/s   vs local")
    print(f"local engine (1 process, {torch.get_num_threads()} threads)         {local_s:8.1f} "
          f"{args.crops / local_s:9.2f}      1.00x")
    print(f"ray, {REPLICAS} replicas x 1 CPU, Ray started      {ray_s:8.1f} {args.crops / ray_s:9.2f}"
          f"  {overhead:9.2f}x")
    print(f"ray, {REPLICAS} replicas x 1 CPU, starting Ray     {cold_s:8.1f} {args.crops / cold_s:9.2f}"
          f"  {cold:9.2f}x")
    print(f"same rows, max |p_fake difference| {difference:.1e} (tolerance {TOLERANCE:g})")
    print(f"target ray <= {TARGET_OVERHEAD}x local (Ray started): {overhead:.2f}x "
          f"({'met' if overhead <= TARGET_OVERHEAD else 'missed'})")
    print(f"\nvideos {'+'.join(map(str, frames))} frames (long first), every frame   time to finish s   vs static")
    print(f"static shards: 2 processes x 1 thread, every 2nd video    {static_s:8.1f}          1.00x")
    print(f"ray: 2 replicas x 1 CPU, next video when done              {dynamic_s:8.1f}      "
          f"{dynamic_s / static_s:8.2f}x")
    print(f"(frames per worker: static {sum(frames[0::2])} and {sum(frames[1::2])}; dynamic at best "
          f"{max(frames[0], sum(frames[1:]))} and {min(frames[0], sum(frames[1:]))})")
    print(f"\n1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (this script adds "
          f"about {REPLICAS}; more: other processes shared the CPUs and the timings are unreliable)")
    print(f"total runtime {time.perf_counter() - started:.0f} s")
    return 0 if difference <= TOLERANCE else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=400)
    parser.add_argument("--long-frames", type=int, default=64)
    parser.add_argument("--short-videos", type=int, default=7)
    parser.add_argument("--short-frames", type=int, default=8)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(benchmark(parse_args()))
