"""Training-step cost per tuning mode: LayerNorm tuning, LoRA and a linear probe against full fine-tuning.

What is compared, on the same ViT-B/16 detector (random weights, seeded) and the same random batch
(224x224 inputs, random real/fake labels), fp32 on the CPU: one training step exactly as the project
takes it, for each of ``clipforensics.models.tuning.apply_tuning``'s modes ``full`` (the baseline),
``layernorm``, ``lora`` and ``linear-probe``:

* ``TrainingModule.training_step``: ``forward_features`` -> ``slerp_augment`` -> ``forward_head`` ->
  cross-entropy + 0.5 uniformity + 0.1 alignment (GenD's weights);
* ``backward``, an AdamW step over the trainable parameters only (the two parameter groups of
  ``TrainingModule.configure_optimizers``: no weight decay on norms and biases), then
  ``zero_grad(set_to_none=True)``.

Why: LN-tuning is the project's default because it trains 0.05 % of the weights; this measures what
that buys in images/s and memory. Frozen weights keep no gradient and no AdamW state, and autograd need
not save a frozen linear's input (only its weight, to pass the gradient on). But every block holds
LayerNorms, so LN-tuning's backward still runs through the whole network: only the weight-gradient
matmuls (about a third of a full step's FLOPs: forward ~ input gradients ~ weight gradients) and the AdamW
update of every weight drop out, so about 1.5x full's speed is what to expect, and its memory is mostly the
activations that backward pass needs. LoRA is in the same position; only the linear probe, whose backward
stops at the head, skips the backward pass through the tower entirely.

Each mode runs in its own subprocess of this script (``--only``) so that its peak RSS is its own:
the figure is the peak during the steps above the RSS right after building the model and optimizer,
which covers gradients, AdamW state (created at the first step), saved activations and temporaries.
The step's gradients and AdamW state actually held are summed from the tensors (after the optimizer
step, before ``zero_grad``), as are the distinct non-parameter storages autograd saves for backward,
both during the warm-up step; the timed steps run without those hooks.

The default of 3 timed steps after 1 warm-up step at batch 16 keeps the whole run near 4 minutes on a
2-core AVX2 CPU, where a full fine-tuning step takes about 16 s and an LN-tuning step about 11 s.

    python bench/train_step.py [--steps 3] [--batch-size 16] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from rss import current_rss_mb, peak_rss_mb, reset_peak_rss
from torch import nn

BACKBONE = "openai/clip-vit-base-patch16"
MODES = ("full", "layernorm", "lora", "linear-probe")  # full first: the baseline
TITLES = {"full": "full (baseline)", "layernorm": "layernorm", "lora": "lora", "linear-probe": "linear-probe"}
MEMORY_TARGET = 0.7  # layernorm's peak memory increase at most this share of full's
SPEED_TARGET = 1.3  # layernorm's images/s at least this multiple of full's
MB = 1024 * 1024

BUSY_WARNING = 0.05  # other processes' share of the CPUs above which the timings are flagged


# --- one mode (subprocess) ------------------------------------------------------------------------


def adamw(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float]) -> torch.optim.AdamW:
    """The optimizer of ``TrainingModule.configure_optimizers`` (which needs a Trainer for its scheduler):
    the trainable parameters only, weight decay on weights but never on norms and biases."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "norm" in name else decay).append(parameter)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=betas,
    )  # fmt: skip


class SavedForBackward:
    """Bytes of the distinct storages autograd saves for backward, the parameters' own left out."""

    def __init__(self, model: nn.Module):
        self.parameters = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.parameters:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @staticmethod
    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    @property
    def mb(self) -> float:
        return sum(self.storages.values()) / MB


def held_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Gradients and AdamW state held now, and how many frozen parameters hold either (should be none)."""
    parameters = list(model.parameters())
    frozen = [parameter for parameter in parameters if not parameter.requires_grad]
    state_tensors = [value for state in optimizer.state.values() for value in state.values()
                     if isinstance(value, torch.Tensor)]  # fmt: skip
    return {
        "grads_mb": sum(p.grad.numel() * p.grad.element_size() for p in parameters if p.grad is not None) / MB,
        "optimizer_state_mb": sum(value.numel() * value.element_size() for value in state_tensors) / MB,
        "frozen_with_grad": sum(parameter.grad is not None for parameter in frozen),
        "frozen_with_state": sum(parameter in optimizer.state for parameter in frozen),
    }


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used since boot by every process (steal included), and by this one (all its threads).

    The machine may be shared; a busy neighbour slows every figure here, so the report shows the share of
    the CPUs that other processes used during the timed steps (0: undisturbed).
    """
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return busy, usage.ru_utime + usage.ru_stime


def run_mode(mode: str, steps: int, batch_size: int, seed: int) -> dict:
    """Builds the detector tuned as ``mode`` and its optimizer, takes one warm-up step, then times ``steps``."""
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig
    from clipforensics.training.config import LossConfig, TrainConfig
    from clipforensics.training.module import TrainingModule
    from clipforensics.models.tuning import apply_tuning

    config = TrainConfig(loss=LossConfig(uniformity=0.5, alignment=0.1))
    torch.manual_seed(seed)
    model = create_model(ModelConfig(BACKBONE))
    counts = apply_tuning(model, mode)
    module = TrainingModule(model.train(), config, val_samples=[])
    optimizer = adamw(model, config.optim.lr, config.optim.weight_decay, tuple(config.optim.betas))
    generator = torch.Generator().manual_seed(seed)
    size = model.config.backbone.image_size
    batch = {
        "image": torch.randn(batch_size, 3, size, size, generator=generator),
        "label": torch.randint(0, len(model.config.labels), (batch_size,), generator=generator),
    }
    # training_step logs through Lightning, which without a Trainer warns and skips the logging
    warnings.filterwarnings("ignore", message=r".*self\.trainer. reference is not registered")

    def step(after_optimizer: Callable[[], None] | None = None) -> None:
        module.training_step(batch, 0).backward()
        optimizer.step()
        if after_optimizer is not None:
            after_optimizer()
        optimizer.zero_grad(set_to_none=True)

    rss_after_build = current_rss_mb()
    reset_peak_rss()
    saved = SavedForBackward(model)
    held: dict[str, float] = {}
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
        step(lambda: held.update(held_state(model, optimizer)))
    seconds = []
    busy_before, own_before = cpu_seconds()
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    busy_after, own_after = cpu_seconds()
    other = (busy_after - busy_before) - (own_after - own_before)
    return {
        "trainable": counts.trainable,
        "total": counts.total,
        "step_seconds": seconds,
        "images_per_s": batch_size * steps / sum(seconds),
        "rss_after_build_mb": rss_after_build,
        "peak_increase_mb": peak_rss_mb() - rss_after_build,
        "saved_for_backward_mb": saved.mb,
        "other_cpu": max(0.0, other / (sum(seconds) * (os.cpu_count() or 1))),
        **held,
    }


def run_in_subprocess(mode: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--only", mode, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed)]  # fmt: skip
    print(f"running {TITLES[mode]} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{TITLES[mode]} failed (exit {done.returncode})")
    return json.loads(done.stdout)


# --- report (parent) ------------------------------------------------------------------------------


def print_report(report: dict) -> None:
    setup, runs = report["setup"], report["modes"]
    print(f"\nViT-B/16 detector, random weights (seed {setup['seed']}); batch {setup['batch_size']} of random "
          f"224x224 inputs; {setup['steps']} timed steps after 1 warm-up; fp32; torch {setup['torch']}, "
          f"{setup['threads']} threads, CPU capability {setup['cpu_capability']}\n")  # fmt: skip
    header = f"{'mode':<16}{'trainable':>12}{'images/s':>10}{'vs full':>9}{'peak +RSS':>11}{'vs full':>9}" \
             f"{'grads+opt':>11}{'saved act':>11}{'other CPU':>11}"  # fmt: skip
    print(header + "\n" + "-" * len(header))
    for mode in MODES:
        run = runs[mode]
        print(f"{TITLES[mode]:<16}{run['trainable']:>12,}{run['images_per_s']:>10.2f}{run['speed_vs_full']:>8.2f}x"
              f"{run['peak_increase_mb']:>8.0f} MB{run['memory_vs_full']:>8.2f}x"
              f"{run['grads_mb'] + run['optimizer_state_mb']:>8.1f} MB{run['saved_for_backward_mb']:>8.0f} MB"
              f"{100 * run['other_cpu']:>10.0f}%")  # fmt: skip
    print("(peak +RSS: the subprocess's peak RSS during the steps above its RSS after building the model and")
    print(" optimizer; grads+opt: .grad tensors plus AdamW state held after the optimizer step; saved act:")
    print(" distinct non-parameter storages autograd saved for backward; both from the warm-up step;")
    print(" other CPU: share of the CPUs other processes used during the timed steps)")
    busiest = max(run["other_cpu"] for run in runs.values())
    if busiest > BUSY_WARNING:
        print(f"WARNING: other processes used up to {100 * busiest:.0f}% of the CPUs: the timings are unreliable")
    print()
    for mode in MODES:
        run = runs[mode]
        leaks = run["frozen_with_grad"] + run["frozen_with_state"]
        print(f"{TITLES[mode]}: frozen parameters holding a gradient: {run['frozen_with_grad']}, AdamW state: "
              f"{run['frozen_with_state']} ({'ok' if leaks == 0 else 'FAILED'})")  # fmt: skip
    layernorm = runs["layernorm"]
    memory_ok = layernorm["memory_vs_full"] <= MEMORY_TARGET
    speed_ok = layernorm["speed_vs_full"] >= SPEED_TARGET
    print(f"target layernorm peak memory increase <= {MEMORY_TARGET:.1f}x full: "
          f"{layernorm['memory_vs_full']:.2f}x {'PASS' if memory_ok else 'FAIL'}")  # fmt: skip
    print(f"target layernorm images/s >= {SPEED_TARGET:.1f}x full: "
          f"{layernorm['speed_vs_full']:.2f}x {'PASS' if speed_ok else 'FAIL'}")  # fmt: skip
    print(f"total runtime: {report['runtime_s']:.0f} s")


def benchmark(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    runs: dict[str, dict] = {}
    for mode in MODES:
        runs[mode] = run_in_subprocess(mode, args)
    full = runs["full"]
    for run in runs.values():
        run["speed_vs_full"] = run["images_per_s"] / full["images_per_s"]
        run["memory_vs_full"] = run["peak_increase_mb"] / full["peak_increase_mb"]
    report = {
        "setup": {
            "backbone": BACKBONE,
            "seed": args.seed,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "modes": runs,
        "targets": {
            "layernorm_memory_vs_full_max": MEMORY_TARGET,
            "layernorm_speed_vs_full_min": SPEED_TARGET,
        },
    }
    report["runtime_s"] = time.perf_counter() - start
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    leaks = sum(run["frozen_with_grad"] + run["frozen_with_state"] for run in runs.values())
    return 0 if leaks == 0 else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode, after 1 warm-up (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per training step (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights, batch and slerp")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--only", choices=MODES, help=argparse.SUPPRESS)  # internal: one mode
    args = parser.parse_args()
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    if args.only:
        print(json.dumps(run_mode(args.only, args.steps, args.batch_size, args.seed)))
        return 0
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
