"""Face-crop detection throughput: clipforensics' ``Detector.predict`` against the reference-style loop.

What is compared, on the same ViT-B/16 detector (random weights, seeded) and the same image files:

* ``baseline``: what the reference code (yermandy/deepfake-detection, GenD) does at inference:
  per image ``PIL.Image.open`` + transformers' ``CLIPImageProcessor``, ``torch.stack`` per batch,
  transformers' ``CLIPVisionModel`` ``.pooler_output`` -> L2 normalisation -> ``nn.Linear`` -> softmax,
  fp32 under ``torch.no_grad()``. It reads the tensors straight from the saved ``model.safetensors``.
* ``fp32`` / ``bf16``: the project's path as a user runs it: ``clipforensics.load(folder, precision=...)``
  then ``detector.predict(paths, faces="none")`` (files -> ``Result`` rows; the files already are aligned
  face crops, as the reference assumes, so no face detection; bf16 keeps the tower's linears in bf16 and runs
  under ``torch.autocast``, LayerNorms and softmax in fp32).

Why: the project must give the reference's numbers (p_fake of ``fp32`` within 1e-4 of ``baseline``; the
script exits 1 otherwise) at least as fast, and bf16 is only worth offering where it is faster: its speed-up over
fp32 should reach 0.8x the machine's own bf16/fp32 matmul ratio (what the CPU allows). Each
pipeline runs in its own subprocess of this script (``--only``) so that its peak RSS is its own. To tell
a slow pipeline from a slow machine, the script also measures this CPU's matmul throughput and reports
what fraction of it each pipeline reaches, from the model's FLOPs per image.

Provenance (each row's sha256, the run header's weights sha256) must cost at most ``PROVENANCE_TARGET`` of the
fp32 pipeline's time: the script decodes every image as the pipeline does (hashing the bytes it reads) and as it
would unhashed, best of three, and hashes the weights against loading them; ``--provenance-only`` runs just that
and the fp32 pipeline.

The default of 64 images (plus one warm-up batch per pipeline) keeps the whole run at about 7 minutes on a
2-core AVX2 CPU, where fp32 does 2-4 images/s and bf16 (no AVX512-BF16/AMX, so no fast bf16 kernels) about
0.4 images/s: the bf16 pipeline alone takes about 4 of those minutes.

    python bench/detect_crops.py [--images 64] [--batch-size 32] [--json results.json] [--provenance-only]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from bound import vit_flops_per_image
from rss import current_rss_mb, peak_rss_mb, reset_peak_rss

SAMPLE_FACES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "faces"
BACKBONE = "openai/clip-vit-base-patch16"
PIPELINES = ("baseline", "fp32", "bf16")
TITLES = {"baseline": "baseline fp32", "fp32": "project fp32", "bf16": "project bf16"}
TOLERANCE = 1e-4
TARGETS = {"fp32": 1.0, "bf16": 2.5}  # images/s relative to the baseline
TARGET_BF16_SHARE_OF_MATMUL_RATIO = 0.8  # bf16 over fp32 images/s, against bf16 over fp32 matmul GFLOP/s
MATMUL_SIZE = 2048

PROVENANCE_TARGET = 0.02  # provenance's share of the fp32 pipeline's time
REPEATS = 3

BUSY_WARNING = 0.05  # other processes' share of the CPUs above which the timings are flagged

Scorer = Callable[[list[Path]], list[float]]
T = TypeVar("T")


# --- setup (parent) -------------------------------------------------------------------------------


def save_random_detector(folder: Path, seed: int) -> Path:
    """A seeded random-weight ViT-B/16 detector written in the project's own checkpoint format."""
    from clipforensics.hub.checkpoints import save_model
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    torch.manual_seed(seed)
    return save_model(create_model(ModelConfig(BACKBONE)).eval(), folder)


def copy_faces(folder: Path, count: int) -> Path:
    """The sample faces repeated to ``count`` distinct files, so every pipeline decodes from disk."""
    faces = sorted(SAMPLE_FACES.rglob("*.png"))
    if not faces:
        raise SystemExit(f"no sample faces under {SAMPLE_FACES}")
    folder.mkdir(parents=True)
    for index in range(count):
        source = faces[index % len(faces)]
        shutil.copyfile(source, folder / f"{index:05d}_{'_'.join(source.relative_to(SAMPLE_FACES).parts)}")
    return folder


# --- provenance (parent) -------------------------------------------------------------------------


def best_seconds(step: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_provenance(model_dir: Path, image_dir: Path) -> dict:
    """Seconds to decode every image hashed (``media.read_image``: the pipeline's read) and unhashed (the same
    decode on the path), and to hash the weights once against loading the model."""
    from PIL import Image, ImageOps

    from clipforensics.hub.checkpoints import load_model
    from clipforensics.media import read_image, to_rgb

    paths = sorted(image_dir.glob("*.png"))

    def unhashed(path: Path) -> Image.Image:
        with Image.open(path) as image:
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))

    weights = model_dir / "model.safetensors"
    return {
        "images": len(paths),
        "decode_hashed_s": best_seconds(lambda: [read_image(path) for path in paths]),
        "decode_unhashed_s": best_seconds(lambda: [unhashed(path) for path in paths]),
        "weights_mb": weights.stat().st_size / 1e6,
        "weights_hash_s": best_seconds(lambda: _digest(weights)),  # what a load hashes, uncached
        "model_load_s": best_seconds(lambda: load_model(model_dir)),
    }


def _digest(path: Path) -> str:
    import hashlib

    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def print_provenance(provenance: dict, fp32: dict) -> float:
    """The provenance figures and their share of the fp32 pipeline's time; returns that share."""
    per_image = (provenance["decode_hashed_s"] - provenance["decode_unhashed_s"]) / provenance["images"]
    scoring = fp32["seconds"] / fp32["images"]
    run = fp32["seconds"] + provenance["model_load_s"]
    share = (max(per_image, 0.0) * fp32["images"] + provenance["weights_hash_s"]) / run
    print(f"\nprovenance: decoding {provenance['images']} images hashed {provenance['decode_hashed_s']:.3f} s, "
          f"unhashed {provenance['decode_unhashed_s']:.3f} s (best of {REPEATS}): "
          f"{1000 * per_image:+.2f} ms an image, {100 * per_image / scoring:.2f}% of fp32's {1000 * scoring:.0f} ms")
    print(f"provenance: weights ({provenance['weights_mb']:.0f} MB) hashed in {provenance['weights_hash_s']:.3f} s, "
          f"once per load (loading: {provenance['model_load_s']:.3f} s)")
    verdict = "met" if share <= PROVENANCE_TARGET else "missed"
    print(f"target provenance <= {100 * PROVENANCE_TARGET:.0f}% of a {fp32['images']}-image fp32 run (model load "
          f"included): {100 * share:.2f}% ({verdict})")
    return share


# --- machine throughput (parent) ------------------------------------------------------------------


def matmul_gflops(fn: Callable[[], torch.Tensor], size: int, reps: int) -> float:
    """GFLOP/s of ``fn`` (one size x size x size matmul) after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return 2 * size**3 * reps / (time.perf_counter() - start) / 1e9


def autocast_bf16(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        with torch.autocast("cpu", torch.bfloat16):
            return fn()

    return run


def measure_matmuls() -> dict[str, float]:
    """Square-matmul GFLOP/s with torch's default threads.

    ``a @ b.T`` is the layout ``nn.Linear`` multiplies in (weights stored [out, in]). Without AVX512-BF16
    torch's bf16 GEMM is a generic kernel that is far slower still when ``b`` is row-major (``a @ b``),
    so that case is measured too, on a smaller size to keep it short; the model never takes that path
    for its linears.
    """
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    a16, b16 = a.bfloat16(), b.bfloat16()
    small = MATMUL_SIZE // 2
    s16, t16 = a16[:small, :small].contiguous(), b16[:small, :small].contiguous()
    return {
        "fp32": matmul_gflops(lambda: a @ b.T, MATMUL_SIZE, reps=5),
        "bf16": matmul_gflops(lambda: a16 @ b16.T, MATMUL_SIZE, reps=2),
        "bf16_autocast": matmul_gflops(autocast_bf16(lambda: a @ b.T), MATMUL_SIZE, reps=2),
        "bf16_row_major_1024": matmul_gflops(lambda: s16 @ t16, small, reps=1),
    }


# --- one pipeline (subprocess) --------------------------------------------------------------------


def project_scorer(model_dir: Path, precision: str, batch_size: int) -> Scorer:
    import clipforensics

    detector = clipforensics.load(model_dir, device="cpu", precision=precision, batch_size=batch_size)

    def score(paths: list[Path]) -> list[float]:
        results = detector.predict(paths, faces="none", progress=False)  # the files are aligned crops
        failed = [result for result in results if not result.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} inputs failed, first: {failed[0].error}")
        return [result.p_fake for result in results]

    return score


def baseline_scorer(model_dir: Path, batch_size: int) -> Scorer:
    """The reference's loop on a transformers ``CLIPVisionModel`` holding the checkpoint's tensors."""
    import torch.nn.functional as F
    from PIL import Image
    from safetensors.torch import load_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    config = json.loads((model_dir / "config.json").read_text())
    arch = config["backbone"]
    vision = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=arch["width"],
            intermediate_size=arch["mlp_width"],
            num_hidden_layers=arch["layers"],
            num_attention_heads=arch["width"] // 64,
            patch_size=arch["patch_size"],
            image_size=arch["image_size"],
            hidden_act="quick_gelu",
        )
    ).eval()
    head = torch.nn.Linear(arch["width"], len(config["labels"])).eval()
    state = load_file(model_dir / "model.safetensors")
    vision.load_state_dict(_strip(state, "backbone.vision."))
    head.load_state_dict(_strip(state, "head."))
    del state
    processor = CLIPImageProcessor()
    fake = config["labels"].index("fake")

    def pixels(path: Path) -> torch.Tensor:
        with Image.open(path) as image:
            return processor(images=image, return_tensors="pt")["pixel_values"][0]

    @torch.no_grad()
    def score(paths: list[Path]) -> list[float]:
        p_fake: list[float] = []
        for start in range(0, len(paths), batch_size):
            batch = torch.stack([pixels(path) for path in paths[start : start + batch_size]])
            features = vision(pixel_values=batch).pooler_output
            logits = head(F.normalize(features, p=2, dim=1))
            p_fake += logits.softmax(dim=1)[:, fake].tolist()
        return p_fake

    return score


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def run_pipeline(name: str, model_dir: Path, image_dir: Path, batch_size: int) -> dict:
    """Builds one pipeline, warms it up on one batch, then times it on every image."""
    paths = sorted(image_dir.glob("*.png"))
    if name == "baseline":
        score = baseline_scorer(model_dir, batch_size)
    else:
        score = project_scorer(model_dir, name, batch_size)
    rss_after_model = current_rss_mb()
    peak_while_building = peak_rss_mb()
    reset_peak_rss()
    score(paths[:batch_size])
    start = time.perf_counter()
    p_fake = score(paths)
    seconds = time.perf_counter() - start
    peak_while_scoring = peak_rss_mb()
    return {
        "images": len(paths),
        "seconds": seconds,
        "images_per_s": len(paths) / seconds,
        "rss_after_model_mb": rss_after_model,
        "peak_rss_mb": max(peak_while_building, peak_while_scoring),
        "scoring_increase_mb": peak_while_scoring - rss_after_model,
        "p_fake": p_fake,
    }


def run_in_subprocess(name: str, model_dir: Path, image_dir: Path, batch_size: int) -> dict:
    command = [sys.executable, __file__, "--only", name, "--model-dir", str(model_dir),
               "--image-dir", str(image_dir), "--batch-size", str(batch_size)]  # fmt: skip
    print(f"running {TITLES[name]} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{TITLES[name]} failed (exit {done.returncode})")
    return json.loads(done.stdout)


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used since boot by every process (steal included), and by this one and its children."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    usages = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return busy, sum(usage.ru_utime + usage.ru_stime for usage in usages)


def with_other_load(step: Callable[..., T], *args: object) -> tuple[T, float]:
    """``step(*args)`` and the share of the machine's CPUs that other processes used meanwhile (0: undisturbed).

    The machine may be shared; a busy neighbour slows every figure here, so the report shows this share.
    """
    busy_before, own_before = cpu_seconds()
    start = time.perf_counter()
    result = step(*args)
    wall = time.perf_counter() - start
    busy_after, own_after = cpu_seconds()
    other = (busy_after - busy_before) - (own_after - own_before)
    return result, max(0.0, other / (wall * (os.cpu_count() or 1)))


# --- report (parent) ------------------------------------------------------------------------------


def summarise(runs: dict[str, dict], matmul: dict[str, float], flops: float) -> dict:
    baseline = runs["baseline"]
    for name, run in runs.items():
        peak = matmul["bf16" if name == "bf16" else "fp32"]
        run["vs_baseline"] = run["images_per_s"] / baseline["images_per_s"]
        run["fraction_of_matmul"] = flops * run["images_per_s"] / (peak * 1e9)
    return {
        "max_abs_diff_fp32_vs_baseline": max_abs_diff(runs["fp32"]["p_fake"], baseline["p_fake"]),
        "max_abs_diff_bf16_vs_fp32": max_abs_diff(runs["bf16"]["p_fake"], runs["fp32"]["p_fake"]),
        "baseline_p_fake_range": [min(baseline["p_fake"]), max(baseline["p_fake"])],
    }


def max_abs_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def print_report(report: dict) -> None:
    setup, matmul, runs, checks = report["setup"], report["matmul_gflops"], report["pipelines"], report["checks"]
    print(f"\nViT-B/16 detector, random weights (seed {setup['seed']}); {setup['images']} files from "
          f"{setup['faces']} sample faces; batch {setup['batch_size']}; torch {setup['torch']}, "
          f"{setup['threads']} threads, CPU capability {setup['cpu_capability']}")  # fmt: skip
    print(f"model FLOPs per image: {report['gflops_per_image']:.2f} GFLOP (matmuls only)\n")
    print(f"square matmul throughput, {MATMUL_SIZE}x{MATMUL_SIZE} (other processes: "
          f"{100 * report['matmul_other_cpu']:.0f}% of the CPUs):")  # fmt: skip
    print(f"  fp32,                   a @ b.T      {matmul['fp32']:8.1f} GFLOP/s")
    print(f"  bf16 tensors,           a @ b.T      {matmul['bf16']:8.1f} GFLOP/s")
    print(f"  bf16 autocast (fp32 in) a @ b.T      {matmul['bf16_autocast']:8.1f} GFLOP/s")
    side = MATMUL_SIZE // 2
    print(f"  bf16 tensors, {side}x{side}, a @ b  {matmul['bf16_row_major_1024']:8.1f} GFLOP/s\n")
    header = f"{'pipeline':<15}{'images/s':>9}{'vs base':>9}{'% matmul':>10}{'peak RSS':>10}" \
             f"{'RSS model':>11}{'+scoring':>10}{'other CPU':>11}"  # fmt: skip
    print(header + "\n" + "-" * len(header))
    for name in PIPELINES:
        run = runs[name]
        print(f"{TITLES[name]:<15}{run['images_per_s']:>9.2f}{run['vs_baseline']:>8.2f}x"
              f"{100 * run['fraction_of_matmul']:>9.0f}%{run['peak_rss_mb']:>7.0f} MB"
              f"{run['rss_after_model_mb']:>8.0f} MB{run['scoring_increase_mb']:>7.0f} MB"
              f"{100 * run['other_cpu']:>10.0f}%")  # fmt: skip
    print("(% matmul: FLOPs/image x images/s over the fp32 matmul, or the bf16 one for bf16;")
    print(" peak RSS: the subprocess's maximum; RSS model: after building the model; +scoring: peak while")
    print(" scoring above RSS model; other CPU: share of the CPUs other processes used meanwhile)")
    busiest = max([report["matmul_other_cpu"]] + [run["other_cpu"] for run in runs.values()])
    if busiest > BUSY_WARNING:
        print(f"WARNING: other processes used up to {100 * busiest:.0f}% of the CPUs: the timings are unreliable")
    low, high = checks["baseline_p_fake_range"]
    fp32_ok = checks["max_abs_diff_fp32_vs_baseline"] <= TOLERANCE
    print(f"\nbaseline p_fake range: {low:.4f} .. {high:.4f}")
    print(f"max |p_fake project fp32 - baseline|: {checks['max_abs_diff_fp32_vs_baseline']:.2e} "
          f"(tolerance {TOLERANCE:g}: {'ok' if fp32_ok else 'FAILED'})")  # fmt: skip
    print(f"max |p_fake project bf16 - project fp32|: {checks['max_abs_diff_bf16_vs_fp32']:.2e}")
    for name, target in TARGETS.items():
        ratio = runs[name]["vs_baseline"]
        verdict = "met" if ratio >= target else "missed"
        print(f"target {TITLES[name]} >= {target:.1f}x baseline: {ratio:.2f}x ({verdict})")
    speedup = runs["bf16"]["images_per_s"] / runs["fp32"]["images_per_s"]
    allowed = matmul["bf16"] / matmul["fp32"]
    share = TARGET_BF16_SHARE_OF_MATMUL_RATIO
    print(f"target bf16 over fp32 >= {share:.1f} x this CPU's bf16/fp32 matmul ratio ({allowed:.2f}x): "
          f"{speedup:.2f}x, {speedup / allowed:.2f} of it ({'met' if speedup >= share * allowed else 'missed'})")
    print(f"total runtime: {report['runtime_s']:.0f} s")


def benchmark(args: argparse.Namespace) -> int:
    from clipforensics.models.backbones import known_backbone

    start = time.perf_counter()
    arch = known_backbone(BACKBONE)
    flops = vit_flops_per_image(arch.width, arch.layers, arch.mlp_width, arch.patch_size, arch.image_size)
    with tempfile.TemporaryDirectory(prefix="detect_crops_") as tmp:
        model_dir = save_random_detector(Path(tmp) / "model", args.seed)
        image_dir = copy_faces(Path(tmp) / "images", args.images)
        print("measuring matmul throughput ...", file=sys.stderr, flush=True)
        matmul, matmul_other_cpu = with_other_load(measure_matmuls)
        runs: dict[str, dict] = {}
        for name in PIPELINES:
            runs[name], other_cpu = with_other_load(run_in_subprocess, name, model_dir, image_dir, args.batch_size)
            runs[name]["other_cpu"] = other_cpu
        provenance, provenance_other_cpu = with_other_load(measure_provenance, model_dir, image_dir)
    report = {
        "setup": {
            "seed": args.seed,
            "images": args.images,
            "faces": len(list(SAMPLE_FACES.rglob("*.png"))),
            "batch_size": args.batch_size,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "gflops_per_image": flops / 1e9,
        "matmul_gflops": matmul,
        "matmul_other_cpu": matmul_other_cpu,
        "pipelines": runs,
        "checks": summarise(runs, matmul, flops),
        "provenance": {**provenance, "other_cpu": provenance_other_cpu},
    }
    report["runtime_s"] = time.perf_counter() - start
    print_report(report)
    report["provenance"]["share_of_fp32_run"] = print_provenance(report["provenance"], runs["fp32"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["checks"]["max_abs_diff_fp32_vs_baseline"] <= TOLERANCE else 1


def provenance_only(args: argparse.Namespace) -> int:
    """The fp32 pipeline and provenance's cost beside it."""
    with tempfile.TemporaryDirectory(prefix="detect_crops_") as tmp:
        model_dir = save_random_detector(Path(tmp) / "model", args.seed)
        image_dir = copy_faces(Path(tmp) / "images", args.images)
        fp32, fp32_other = with_other_load(run_in_subprocess, "fp32", model_dir, image_dir, args.batch_size)
        provenance, other = with_other_load(measure_provenance, model_dir, image_dir)
    print(f"fp32 pipeline: {fp32['images_per_s']:.2f} images/s (other processes: {100 * fp32_other:.0f}% of the "
          f"CPUs; during the provenance figures: {100 * other:.0f}%)")
    share = print_provenance(provenance, fp32)
    if args.json:
        Path(args.json).write_text(json.dumps({"fp32": fp32, "provenance": provenance, "share": share}, indent=2))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64, help="files to score per pipeline (default 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--provenance-only", action="store_true",
                        help="only the fp32 pipeline and provenance's cost beside it (about a minute)")
    parser.add_argument("--only", choices=PIPELINES, help=argparse.SUPPRESS)  # internal: one pipeline
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.only:
        print(json.dumps(run_pipeline(args.only, args.model_dir, args.image_dir, args.batch_size)))
        return 0
    return provenance_only(args) if args.provenance_only else benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
