"""Peak memory of ``clipforensics detect --sampler all`` on long videos: it must not grow with the video.

The inputs are written by the script: 1280x720 H.264 MP4s of 100, 300 and 900 frames showing a moving real
face (``video_pipeline.write_video``: the astronaut's head sliding over a grey canvas, CRF 23). Each run is a
fresh process running the command line as a user does (``detect VIDEO --sampler all`` with a tiny
random-weight detector, faces found by dlib HOG, fp32), plain and with ``--annotate DIR`` (an MP4 of every
frame drawn), and reports its peak resident memory (VmHWM) above the interpreter with the package loaded.

The baseline, run side by side: the same process decoding the video the way the pipeline did before it
streamed, every sampled frame kept (``clipforensics.media.read_video(path, Sampler("all"))``), which grows
about 2.6 MB per 720p frame.

Target: the 900-frame peak within 15 % of the 100-frame peak, for detect and detect --annotate.

    python bench/video_memory.py [--frames 100 300 900] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_GROWTH = 0.15
CASES = {"baseline": "baseline: read_video, every frame kept", "detect": "detect --sampler all",
         "annotate": "detect --sampler all --annotate"}


def measure(case: str, video: Path, model: Path, workdir: Path) -> dict[str, float]:
    """In this process: the RSS with the package loaded, then the case and its peak above that."""
    import torch  # noqa: F401
    from rss import current_rss_mb, peak_rss_mb, reset_peak_rss

    import clipforensics.inference.predictor  # noqa: F401
    from clipforensics.cli import main
    from clipforensics.inference.provenance import read_rows
    from clipforensics.media import Sampler, read_video

    reset_peak_rss()
    base = current_rss_mb()
    if case == "baseline":
        frames = len(read_video(video, Sampler("all")).frames)
    else:
        arguments = ["detect", str(video), "--model", str(model), "--sampler", "all", "--precision", "fp32",
                     "--output", str(workdir / f"{case}-{video.stem}.jsonl")]
        if case == "annotate":
            arguments += ["--annotate", str(workdir / f"annotated-{video.stem}")]
        main(arguments)
        (row,) = read_rows(workdir / f"{case}-{video.stem}.jsonl")
        frames = row["frames"]
        assert row["error"] is None and row["frames_with_faces"] == frames, row
    return {"base_mb": base, "peak_above_mb": peak_rss_mb() - base, "frames": frames}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 300, 900], help="lengths of the videos")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", choices=tuple(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.video, args.model, args.workdir)))
        return 0

    from rss import cpu_name
    from video_pipeline import write_video

    import torch

    from clipforensics.hub.checkpoints import save_model
    from clipforensics.models.backbones import TINY_BACKBONE
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    print(f"CPU: {cpu_name()}", flush=True)
    figures: dict[str, dict[int, dict]] = {case: {} for case in CASES}
    with tempfile.TemporaryDirectory(prefix="clipforensics-video-memory-") as temporary:
        workdir = Path(temporary)
        torch.manual_seed(0)
        model = save_model(create_model(ModelConfig(TINY_BACKBONE)), workdir / "tiny-detector")
        for count in args.frames:
            video = workdir / f"face-{count}.mp4"
            write_video(video, count, seed=0)
            for case in CASES:
                done = subprocess.run([sys.executable, __file__, "--only", case, "--video", str(video), "--model",
                                       str(model), "--workdir", str(workdir)], capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                figures[case][count] = json.loads(done.stdout.strip().splitlines()[-1])
    print("\npeak RSS above the interpreter with the package loaded, 1280x720 H.264, every frame sampled")
    print(f"{'':<36}" + "".join(f"{count:>9} fr" for count in args.frames) + f"{'growth':>10}")
    met = {}
    for case, title in CASES.items():
        peaks = [figures[case][count]["peak_above_mb"] for count in args.frames]
        growth = peaks[-1] / peaks[0] - 1
        print(f"{title:<36}" + "".join(f"{peak:9.0f} MB" for peak in peaks) + f"{100 * growth:9.0f} %")
        if case != "baseline":
            met[case] = growth <= TARGET_GROWTH
    print("\n" + "\n".join(f"target {'met' if ok else 'MISSED'}: {CASES[case]} within 15 % from "
                             f"{args.frames[0]} to {args.frames[-1]} frames" for case, ok in met.items()))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "figures": figures, "targets_met": met}, indent=2) + "\n")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
