"""Video throughput: from an MP4 to per-frame verdicts on 32 uniformly sampled frames, stage by stage.

The input is written by the script: a 1280x720 H.264 MP4 (libx264, CRF 23 and its default GOP, as
FaceForensics++'s c23 footage was encoded) showing a real face, scikit-image's public-domain
``astronaut`` head upscaled to 600x600 so the face is as large as in FF++ footage, sliding and bobbing
a few pixels per frame over a gray canvas, with a fresh patch of random noise in a corner of every
frame so that frames encode to realistic sizes.

What is timed, for the project's video path (``Sampler("uniform", 32)``, fp32 on CPU):

* decode and sampling: ``clipforensics.media.read_video``, which decodes the file once front to back
  and converts only the sampled frames to RGB;
* face detection: the default search, as ``detect`` runs it on a video: ``FaceOptions().create_detector()``
  (MTCNN) through a ``VideoFaceSearch`` (full searches every few sampled frames, a look around the known faces
  between them), then ``choose_faces`` (the largest face);
* people: ``faces.people.PeopleLinker`` linking the faces of the sampled frames into people, as ``detect`` does for
  every video, dlib's face descriptors included (computed where boxes cannot tell: a person's first and last face,
  crossings); beside it, what a descriptor for every face would cost (``FaceDescriber`` on each face), the
  alternative the linker avoids;
* alignment: ``align_face(..., "deepfakebench", 256)`` plus CLIP's ``resize_and_crop`` to 224;
* model: a seeded random-weight ViT-B/16 detector scoring the 32 crops in one batch through
  ``Detector.predict_tensor(normalize(...))`` and a softmax, as ``Detector._p_fake`` does;
* end to end: ``clipforensics.load(folder, precision="fp32").predict([mp4], frames=32)``, the public API
  with ``faces="auto"``, which runs the same stages in its worker thread and the model after them.

The baseline for decode and sampling is what GenD's ``detector.py`` does: the frame count from
``imageio.v3.improps(path, plugin="pyav").shape[0]``, then for each of ``np.linspace(0, total - 1, 32,
dtype=int)`` one ``imageio.v3.imread(path, index=frame_id, plugin="pyav")``, which reopens the file and
decodes up to that frame every time. Both must give the same frame indices and the same pixels
(H.264 decoding is bit-exact, so the difference should be 0).

Why: a detector that takes 32 frames of each video spends much of its time outside the model; this
shows where, and checks the targets: project decoding >= 3x the baseline's speed, face detection
<= 60 ms per 720p frame on a 2-core CPU, linking people < 10 % of the model's time. Every stage runs
``--repeats`` times and the median is reported; face detection, linking and the model get one untimed warm-up call
first (loading dlib's landmark and descriptor models, the first forward pass's allocations). End to end gets none:
each ``predict`` call builds its own face detector, a cost every call pays. The script exits 1 when a correctness
check fails (frame indices, pixels, a frame without a face, end-to-end scores against the staged ones); missed speed
targets are reported.

With ``--large``, the ViT-L/14 case instead, against the matmul bound (``bench/bound.py``): a random ViT-L/14
checkpoint in GenD's layout (written as ``bench/startup.py`` writes it) scores the same video end to end through
``load(folder, precision=P).predict([mp4], frames=32)`` (load excluded, after one untimed forward), for fp32 and
bf16, each run a fresh process that first measures this CPU's fp32 and bf16 matmul peaks; the bound is
``frames x 162 GFLOP`` at the precision's peak. Each process also times the model alone (one batch of 32
crops, ``predict_tensor``) and profiles that batch op by op. ``--before DIR`` (the package as it was, e.g.
``git archive main | tar -x -C DIR``) runs the same processes on that code too, interleaved with this one's.
Targets: end to end at most 1.25x the bound in bf16, 1.15x in fp32; bf16 load at most 1.5x fp32's.

    python bench/video_pipeline.py [--frames-total 300] [--repeats 3] [--json results.json]
    python bench/video_pipeline.py --large [--repeats 2] [--before DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import av
import cv2
import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image
from skimage import data

import clipforensics
from bound import attention_kernels, config_flops, matmul_peaks, op_profile, print_profiles
from clipforensics.inference.predictor import Predictor
from clipforensics.hub.checkpoints import save_model
from clipforensics.faces.align import align_face
from clipforensics.faces.detection import Face, FaceDetector, choose_faces
from clipforensics.faces.options import FaceOptions
from clipforensics.faces.people import PeopleLinker, face_describer
from clipforensics.faces.search import VideoFaceSearch
from clipforensics.media import Frame, Sampler, read_video
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.transforms import normalize, resize_and_crop

BACKBONE = "openai/clip-vit-base-patch16"
FACE_BACKEND = FaceOptions().backend
RECIPE = "deepfakebench"
CROP_SIZE = 256
WIDTH, HEIGHT = 1280, 720
FACE_SIDE = 600
NOISE_SIDE = 128
FPS = 25
CRF = 23
STEP_PX = 3
SCORE_TOLERANCE = 1e-4
TARGET_DECODE_RATIO = 3.0
TARGET_DETECT_MS = 60.0
TARGET_PEOPLE_SHARE = 0.10
LARGE_BACKBONE = "openai/clip-vit-large-patch14"
LARGE_PRECISIONS = ("fp32", "bf16")
TARGET_BOUND_RATIO = {"fp32": 1.15, "bf16": 1.25}
TARGET_BF16_LOAD_RATIO = 1.5
STAGES = {
    "decode_gend": "decode + sample, GenD (imageio)",
    "decode": "decode + sample, project",
    "detect": f"face detection ({FACE_BACKEND})",
    "people": "linking people (descriptors incl.)",
    "describe_all": "  (a descriptor for every face)",
    "align": "alignment + CLIP preprocessing",
    "model": "model, ViT-B/16 fp32, 1 batch",
    "stages": "project stages, summed",
    "end_to_end": "end to end, load().predict",
}

T = TypeVar("T")


# --- input ----------------------------------------------------------------------------------------


def head_image() -> np.ndarray:
    """The astronaut's head (rows 0:300, cols 100:400) upscaled to FACE_SIDE x FACE_SIDE, RGB."""
    head = np.ascontiguousarray(data.astronaut()[0:300, 100:400])
    return cv2.resize(head, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_CUBIC)


def head_position(frame: int) -> tuple[int, int]:
    """Top-left corner of the head: slides STEP_PX per frame across the canvas and back, bobbing."""
    span = WIDTH - FACE_SIDE
    travel = (STEP_PX * frame) % (2 * span)
    x = travel if travel <= span else 2 * span - travel
    y = (HEIGHT - FACE_SIDE) // 2 + round(0.4 * (HEIGHT - FACE_SIDE) * math.sin(frame / 20))
    return x, y


def write_video(path: Path, frames_total: int, seed: int) -> None:
    """The moving-face MP4: H.264, yuv420p, CRF 23, libx264's default GOP."""
    head = head_image()
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(CRF)}
        for number in range(frames_total):
            canvas = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
            x, y = head_position(number)
            canvas[y : y + FACE_SIDE, x : x + FACE_SIDE] = head
            canvas[-NOISE_SIDE:, -NOISE_SIDE:] = rng.integers(0, 256, (NOISE_SIDE, NOISE_SIDE, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode())


def video_facts(path: Path) -> dict:
    """Frames, keyframes and size of the written file (the baseline's cost grows with the GOP)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(packet.size, packet.is_keyframe) for packet in container.demux(stream) if packet.size]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "frames": len(packets),
        "keyframes": sum(keyframe for _, keyframe in packets),
        "fps": FPS,
        "crf": CRF,
        "bytes": path.stat().st_size,
        "kib_per_frame": sum(size for size, _ in packets) / len(packets) / 1024,
    }


def save_random_detector(folder: Path, seed: int) -> Path:
    """A seeded random-weight ViT-B/16 detector in the project's own checkpoint format."""
    torch.manual_seed(seed)
    return save_model(create_model(ModelConfig(BACKBONE)).eval(), folder)


# --- the stages -----------------------------------------------------------------------------------


def decode_project(path: Path, count: int) -> list[Frame]:
    return read_video(path, Sampler("uniform", count)).frames


def decode_gend(path: Path, count: int) -> tuple[list[int], list[np.ndarray]]:
    """GenD's sampling: frame count from imageio's properties, then one ``imread`` (reopen, decode) per frame."""
    total = iio.improps(path, plugin="pyav").shape[0]
    frame_ids = np.linspace(0, total - 1, count, dtype=int)
    return frame_ids.tolist(), [iio.imread(path, index=int(frame_id), plugin="pyav") for frame_id in frame_ids]


def detect_faces(detector: FaceDetector, frames: list[Frame]) -> list[Face | None]:
    """The face each frame is scored on (the largest), None where none was found, searched as ``detect`` searches
    a video."""
    search = VideoFaceSearch(detector)
    chosen = [choose_faces(search.detect(frame.image)) for frame in frames]
    return [faces[0] if faces else None for faces in chosen]


def link_people(frames: list[Frame], faces: list[Face | None]) -> PeopleLinker:
    """The frames' faces linked into people by a new linker, as ``detect`` links a video's."""
    linker = PeopleLinker()
    for frame, face in zip(frames, faces, strict=True):
        linker.link(frame.image, [] if face is None else [face])
    return linker


def describe_all(frames: list[Frame], faces: list[Face | None]) -> int:
    """A descriptor for every face: what linking by appearance alone would cost."""
    describe = face_describer()
    return sum(describe(frame.image, face) is not None for frame, face in zip(frames, faces) if face is not None)


def align_and_preprocess(frames: list[Frame], faces: list[Face | None], detector: Predictor) -> np.ndarray:
    """uint8 [N, 224, 224, 3]: each found face aligned to 256 px, then CLIP's resize and centre crop."""
    return np.stack([
        resize_and_crop(Image.fromarray(align_face(frame.image, face.landmarks, RECIPE, CROP_SIZE).crop),
                        detector.config.preprocessing)
        for frame, face in zip(frames, faces) if face is not None
    ])


def score(detector: Predictor, pixels: np.ndarray) -> list[float]:
    """p_fake of every crop in one forward pass, as ``Detector._p_fake`` computes it."""
    logits = detector.predict_tensor(normalize(pixels, detector.config.preprocessing))
    return logits.softmax(dim=1)[:, detector.config.fake_index].tolist()


def predict_video(detector: Predictor, path: Path, count: int) -> clipforensics.Result:
    [result] = detector.predict([path], frames=count)
    if not result.ok:
        raise SystemExit(f"end to end failed: {result.error}")
    return result


# --- timing ---------------------------------------------------------------------------------------


def measure(fn: Callable[[], T], repeats: int, warm_up: bool) -> tuple[list[float], T]:
    """Seconds of each of ``repeats`` calls (after one untimed call if ``warm_up``) and the last result."""
    if warm_up:
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def stage_figures(seconds: list[float], frames: int) -> dict:
    median = statistics.median(seconds)
    return {"seconds": median, "ms_per_frame": 1000 * median / frames, "frames_per_s": frames / median,
            "runs": seconds}


def run_stages(path: Path, model_dir: Path, count: int, repeats: int) -> tuple[dict, dict]:
    """Times every stage and the whole; returns the figures and the correctness checks."""
    timings: dict[str, list[float]] = {}
    print("timing decode + sample (GenD baseline) ...", file=sys.stderr, flush=True)
    timings["decode_gend"], (gend_ids, gend_images) = measure(lambda: decode_gend(path, count), repeats, False)
    print("timing the project's stages ...", file=sys.stderr, flush=True)
    timings["decode"], frames = measure(lambda: decode_project(path, count), repeats, False)
    face_detector = FaceOptions().create_detector()
    timings["detect"], faces = measure(lambda: detect_faces(face_detector, frames), repeats, True)
    if not any(faces):
        raise SystemExit("no face found in any sampled frame: nothing to align or score")
    timings["people"], linker = measure(lambda: link_people(frames, faces), repeats, True)
    timings["describe_all"], _ = measure(lambda: describe_all(frames, faces), repeats, False)
    detector = clipforensics.load(model_dir, precision="fp32")
    timings["align"], pixels = measure(lambda: align_and_preprocess(frames, faces, detector), repeats, False)
    timings["model"], p_fake = measure(lambda: score(detector, pixels), repeats, True)
    print("timing end to end ...", file=sys.stderr, flush=True)
    timings["end_to_end"], result = measure(lambda: predict_video(detector, path, count), repeats, False)

    sampled = len(frames)
    figures = {name: stage_figures(seconds, sampled) for name, seconds in timings.items()}
    summed = [sum(runs) for runs in zip(*(timings[name] for name in ("decode", "detect", "people", "align", "model")))]
    figures["stages"] = stage_figures(summed, sampled)

    end_to_end = [frame.p_fake for frame in result.frames if frame.p_fake is not None]
    checks = {
        "sampled_frames": sampled,
        "frame_indices_equal": [frame.index for frame in frames] == gend_ids,
        "max_abs_pixel_diff": max(int(np.abs(frame.image.astype(np.int16) - image).max())
                                  for frame, image in zip(frames, gend_images, strict=True)),
        "frames_with_face": sum(face is not None for face in faces),
        "end_to_end_frame_indices_equal": [frame.index for frame in result.frames] == gend_ids,
        "max_abs_p_fake_diff_end_to_end_vs_stages": max(abs(a - b) for a, b in zip(p_fake, end_to_end, strict=True)),
        "end_to_end_p_fake": result.p_fake,
        "people": len(linker.people),
        "descriptors": linker.described,
        "end_to_end_people": len(result.people),
    }
    return figures, checks


# --- report ---------------------------------------------------------------------------------------


def passed(checks: dict) -> bool:
    return (checks["frame_indices_equal"] and checks["max_abs_pixel_diff"] == 0
            and checks["frames_with_face"] == checks["sampled_frames"]
            and checks["end_to_end_frame_indices_equal"] and checks["people"] == checks["end_to_end_people"] == 1
            and checks["max_abs_p_fake_diff_end_to_end_vs_stages"] <= SCORE_TOLERANCE)


def cpu_name() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def print_report(report: dict) -> None:
    setup, video, stages, checks = report["setup"], report["video"], report["stages"], report["checks"]
    print(f"\n{video['width']}x{video['height']} H.264 MP4, {video['frames']} frames at {video['fps']} fps, "
          f"{video['keyframes']} keyframes, CRF {video['crf']}, {video['kib_per_frame']:.1f} KiB/frame; "
          f"{checks['sampled_frames']} frames sampled uniformly")  # fmt: skip
    print(f"{setup['cpu']}, torch {setup['torch']} with {setup['threads']} threads; ViT-B/16 random weights "
          f"(seed {setup['seed']}), fp32; median of {setup['repeats']} runs")  # fmt: skip
    before, after = setup["load_average_1min"]
    print(f"1-minute load average {before:.2f} before, {after:.2f} after (this run adds up to {setup['threads']}; "
          "more means other processes shared the CPU and inflated the timings)\n")  # fmt: skip
    header = f"{'stage':<34}{'s / ' + str(checks['sampled_frames']) + ' frames':>14}{'ms/frame':>10}{'frames/s':>10}"
    print(header + "\n" + "-" * len(header))
    for name, title in STAGES.items():
        figures = stages[name]
        if name in ("stages", "end_to_end"):
            print("-" * len(header))
        print(f"{title:<34}{figures['seconds']:>14.3f}{figures['ms_per_frame']:>10.1f}{figures['frames_per_s']:>10.2f}")
    print("(project stages: decode, detection, people, alignment and model of the project's path, the GenD row and "
          "the every-face descriptors apart)\n")

    ratio, detect_ms = report["decode_speedup"], stages["detect"]["ms_per_frame"]
    print(f"frame indices, project vs GenD: {'same' if checks['frame_indices_equal'] else 'DIFFERENT'}; "
          f"max |pixel difference|: {checks['max_abs_pixel_diff']}")  # fmt: skip
    print(f"faces found in {checks['frames_with_face']} of {checks['sampled_frames']} sampled frames")
    print(f"max |p_fake end to end - staged|: {checks['max_abs_p_fake_diff_end_to_end_vs_stages']:.2e} "
          f"(tolerance {SCORE_TOLERANCE:g}); video p_fake {checks['end_to_end_p_fake']:.4f}")  # fmt: skip
    print(f"target decode + sample >= {TARGET_DECODE_RATIO:.0f}x GenD's speed: {ratio:.1f}x "
          f"({'met' if ratio >= TARGET_DECODE_RATIO else 'missed'})")  # fmt: skip
    print(f"target face detection <= {TARGET_DETECT_MS:.0f} ms per 720p frame: {detect_ms:.1f} ms "
          f"({'met' if detect_ms <= TARGET_DETECT_MS else 'missed'})")  # fmt: skip
    share = stages["people"]["seconds"] / stages["model"]["seconds"]
    every = stages["describe_all"]["seconds"] / stages["model"]["seconds"]
    print(f"people: {checks['people']} linked with {checks['descriptors']} descriptors (end to end: "
          f"{checks['end_to_end_people']}); a descriptor for every face would be {every:.0%} of the model's time")
    print(f"target linking people < {TARGET_PEOPLE_SHARE:.0%} of the model's time: {share:.1%} "
          f"({'met' if share < TARGET_PEOPLE_SHARE else 'missed'})")  # fmt: skip
    print(f"end to end: {stages['end_to_end']['frames_per_s']:.2f} sampled frames/s "
          f"({stages['end_to_end']['seconds']:.2f} s per video)")  # fmt: skip
    print(f"checks: {'passed' if report['passed'] else 'FAILED'}; total runtime {report['runtime_s']:.0f} s")


# --- the ViT-L/14 case against the matmul bound ------------------------------------------------------


def large_run(path: Path, model_dir: Path, frames: int, repeats: int, precision: str) -> dict:
    """In this process: matmul peaks, load, the model alone on one batch, end to end, a profile of the batch."""
    peaks = matmul_peaks()
    start = time.perf_counter()
    predictor = clipforensics.load(model_dir, device="cpu", precision=precision)
    load_s = time.perf_counter() - start
    pixels = torch.randn(frames, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    model_s, _ = measure(lambda: predictor.predict_tensor(pixels), repeats, True)
    end_to_end_s, result = measure(lambda: predict_video(predictor, path, frames), repeats, False)
    config = predictor.config.backbone
    return {"peaks": peaks, "load_s": load_s, "model_s": model_s, "end_to_end_s": end_to_end_s,
            "p_fake": result.p_fake, "profile": op_profile(lambda: predictor.predict_tensor(pixels)),
            "attention_s": attention_kernels(frames, config.heads, config.grid**2 + 1)}


def run_large(args: argparse.Namespace, path: Path, tmp: Path) -> dict:
    """Every (precision, code) run in a fresh process, this code's and ``--before``'s interleaved."""
    from startup import write_gend_checkpoint

    from clipforensics.models.backbones import known_backbone

    model_dir = tmp / "gend-l14"
    print("writing a random ViT-L/14 GenD checkpoint ...", file=sys.stderr, flush=True)
    write_gend_checkpoint(model_dir)
    codes = {"before": args.before, "after": None} if args.before else {"after": None}
    runs = {}
    for precision in LARGE_PRECISIONS:
        for code, folder in codes.items():
            print(f"ViT-L/14 {precision}, {code} ...", file=sys.stderr, flush=True)
            env = {**os.environ, "PYTHONPATH": str(folder.resolve())} if folder else None
            done = subprocess.run([sys.executable, __file__, "--large-child", precision, "--video", str(path),
                                   "--model-dir", str(model_dir), "--frames", str(args.frames),
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, env=env)
            if done.returncode:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"the ViT-L/14 {precision} run ({code}) failed")
            runs[f"{precision} {code}"] = json.loads(done.stdout.strip().splitlines()[-1])
    gflops = config_flops(known_backbone(LARGE_BACKBONE)) / 1e9
    for key, run in runs.items():
        peak = run["peaks"][key.split()[0]]
        run["bound_s"] = args.frames * gflops / peak
        run["end_to_end_ratio"] = statistics.median(run["end_to_end_s"]) / run["bound_s"]
        run["model_ratio"] = statistics.median(run["model_s"]) / run["bound_s"]
    return {"gflops_per_image": gflops, "runs": runs}


def print_large(report: dict) -> None:
    setup, large = report["setup"], report["large"]
    print(f"\n{setup['cpu']}, torch {setup['torch']} with {setup['threads']} threads; ViT-L/14 GenD checkpoint, "
          f"random weights; {large['gflops_per_image']:.0f} GFLOP per crop (matmuls); median of "
          f"{setup['repeats']} runs [min-max], each (precision, code) a fresh process")  # fmt: skip
    before, after = setup["load_average_1min"]
    print(f"1-minute load average {before:.2f} before, {after:.2f} after\n")
    header = (f"{'run':<13}{'peak GFLOP/s':>13}{'bound s':>9}{'end to end s':>22}{'x bound':>8}"
              f"{'model s':>20}{'x bound':>8}{'load s':>8}")
    print(header + "\n" + "-" * len(header))
    for key, run in large["runs"].items():
        peak = run["peaks"][key.split()[0]]
        e2e, model = run["end_to_end_s"], run["model_s"]
        print(f"{key:<13}{peak:>13.0f}{run['bound_s']:>9.1f}"
              f"{statistics.median(e2e):>8.1f} [{min(e2e):.1f}-{max(e2e):.1f}]".ljust(22 + 35)
              + f"{run['end_to_end_ratio']:>7.2f}x{statistics.median(model):>8.1f} [{min(model):.1f}-{max(model):.1f}]"
              f"{run['model_ratio']:>7.2f}x{run['load_s']:>8.2f}")  # fmt: skip
    print_profiles({f"per-op profile, model alone, batch {setup['frames']}, {key}": run["profile"]
                    for key, run in large["runs"].items()})
    after_runs = {key.split()[0]: run for key, run in large["runs"].items() if key.endswith("after")}
    kernels = after_runs["bf16"]["attention_s"]
    print("\none attention of the batch (SDPA, best of 3): "
          + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in kernels.items()))
    print()
    for precision, target in TARGET_BOUND_RATIO.items():
        ratio = after_runs[precision]["end_to_end_ratio"]
        print(f"target {precision} end to end <= {target:.2f}x the bound: {ratio:.2f}x "
              f"({'met' if ratio <= target else 'missed'})")  # fmt: skip
    load_ratio = after_runs["bf16"]["load_s"] / after_runs["fp32"]["load_s"]
    print(f"target bf16 load <= {TARGET_BF16_LOAD_RATIO:.1f}x fp32's: {load_ratio:.2f}x "
          f"({'met' if load_ratio <= TARGET_BF16_LOAD_RATIO else 'missed'})")  # fmt: skip
    difference = abs(after_runs["bf16"]["p_fake"] - after_runs["fp32"]["p_fake"])
    print(f"video p_fake, bf16 - fp32: {difference:.2e}")


def benchmark(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="video_pipeline_") as tmp:
        path = Path(tmp) / "moving_face.mp4"
        print(f"writing {path.name} ({args.frames_total} frames) and the model ...", file=sys.stderr, flush=True)
        write_video(path, args.frames_total, args.seed)
        if args.large:
            large = run_large(args, path, Path(tmp))
        else:
            model_dir = save_random_detector(Path(tmp) / "model", args.seed)
            stages, checks = run_stages(path, model_dir, args.frames, args.repeats)
        video = video_facts(path)
    setup = {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(), "seed": args.seed,
             "repeats": args.repeats, "frames": args.frames, "load_average_1min": [load_before, os.getloadavg()[0]]}
    if args.large:
        report = {"setup": setup, "video": video, "large": large, "runtime_s": time.perf_counter() - start}
        print_large(report)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    report = {
        "setup": setup,
        "video": video,
        "stages": stages,
        "decode_speedup": stages["decode_gend"]["seconds"] / stages["decode"]["seconds"],
        "checks": checks,
        "passed": passed(checks),
    }
    report["runtime_s"] = time.perf_counter() - start
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames-total", type=int, default=300, help="frames in the written MP4 (default 300)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled uniformly per video (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per stage, median reported (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and the noise patch")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--large", action="store_true", help="the ViT-L/14 case against the matmul bound instead")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="with --large: also run the package found in DIR (the code before), interleaved")
    parser.add_argument("--large-child", choices=LARGE_PRECISIONS, help=argparse.SUPPRESS)  # internal: one run
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.frames, args.repeats) < 1:
        parser.error("--frames and --repeats must be at least 1")
    if args.frames_total < args.frames:
        parser.error("--frames-total must be at least --frames (GenD's linspace would repeat frames)")
    return args


def main() -> int:
    args = parse_args()
    if args.large_child:
        print(json.dumps(large_run(args.video, args.model_dir, args.frames, args.repeats, args.large_child)))
        return 0
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
