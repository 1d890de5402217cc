"""The matmul bound a ViT forward is held to: its matmul FLOPs at this CPU's measured matmul peak; and where the
rest of the time goes (a per-op profile).

A forward can be no faster than its matmuls run at the peak of a large square matmul, so ``seconds / bound`` says
how much of the time is spent elsewhere (casts, elementwise work, attention, memory) or lost to small matmuls.
The peaks are measured in the process that is timed, right before: a shared machine moves both alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

MATMUL_SIZE = 2048


def vit_flops_per_image(width: int, layers: int, mlp_width: int, patch_size: int, image_size: int) -> float:
    """FLOPs (2 per multiply-add) of the matmuls in one ViT forward pass.

    With T = (image_size / patch_size)^2 + 1 tokens, width D and MLP width M, per layer:
        2*T*(4*D*D + 2*D*M)   the q, k, v and output projections and the two MLP linears
      + 2*2*T*T*D             Q @ K^T and attention @ V
    times ``layers``, plus the patch embedding 2*(T-1)*D*3*P*P. Norms, softmax, GELU and the
    768x2 head are left out (well under 1%). ViT-B/16 at 224 (T=197, D=768, M=3072): 35.1 GFLOPs;
    ViT-L/14 at 224: 162 GFLOPs.
    """
    patches = (image_size // patch_size) ** 2
    tokens = patches + 1
    per_layer = 2 * tokens * (4 * width * width + 2 * width * mlp_width) + 2 * 2 * tokens * tokens * width
    return layers * per_layer + 2 * patches * width * 3 * patch_size * patch_size


def config_flops(config) -> float:
    """``vit_flops_per_image`` of a ``BackboneConfig`` (register tokens and DINOv3's 16-px patches included)."""
    flops = vit_flops_per_image(config.width, config.layers, config.mlp_width, config.patch_size, config.image_size)
    if config.registers:
        tokens = (config.image_size // config.patch_size) ** 2 + 1
        extra = config.registers
        flops += config.layers * (2 * extra * (4 * config.width**2 + 2 * config.width * config.mlp_width)
                                  + 4 * ((tokens + extra) ** 2 - tokens**2) * config.width)
    return flops


def matmul_gflops(fn: Callable[[], torch.Tensor], size: int, seconds: float = 1.5) -> float:
    """GFLOP/s of ``fn`` (one size x size x size matmul): the best of repeated calls over about ``seconds``
    after one warm-up call (the best, since a shared machine only ever slows a call down)."""
    fn()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * size**3 / best / 1e9


def matmul_peaks() -> dict[str, float]:
    """GFLOP/s of ``a @ b.T`` (``nn.Linear``'s layout) on float32 and on bf16 tensors, torch's default threads."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    a16, b16 = a.bfloat16(), b.bfloat16()
    return {"fp32": matmul_gflops(lambda: a @ b.T, MATMUL_SIZE),
            "bf16": matmul_gflops(lambda: a16 @ b16.T, MATMUL_SIZE)}


def op_profile(fn: Callable[[], object], top: int = 10) -> list[dict]:
    """One call of ``fn`` under torch's profiler: the ``top`` ops by self CPU time (seconds, share of the
    total), then the rest as one row."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        fn()
    events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events)
    rows = [{"op": event.key, "calls": event.count, "seconds": event.self_cpu_time_total / 1e6,
             "share": event.self_cpu_time_total / total} for event in events[:top]]
    rest = sum(event.self_cpu_time_total for event in events[top:])
    return rows + [{"op": "(everything else)", "calls": sum(event.count for event in events[top:]),
                    "seconds": rest / 1e6, "share": rest / total}]


def print_profiles(profiles: dict[str, list[dict]]) -> None:
    """Per-op tables, one after the other, each titled by its key."""
    for title, rows in profiles.items():
        print(f"\n{title}")
        print(f"  {'op':<44}{'calls':>7}{'self s':>9}{'share':>8}")
        for row in rows:
            print(f"  {row['op'][:43]:<44}{row['calls']:>7}{row['seconds']:>9.2f}{100 * row['share']:>7.1f}%")


def attention_kernels(batch: int, heads: int, tokens: int, head_width: int = 64, repeats: int = 3) -> dict:
    """Seconds (best of ``repeats``) of one attention of this shape through SDPA's CPU flash kernel and through
    its math path, in float32 and in bf16, and in bf16 through the towers' own kernel where it runs here
    (``models.towers.bf16_kernels``): which kernel the towers should take in each precision."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        from clipforensics.models.towers.bf16_kernels import KERNEL, attention, attention_kernel
    except ImportError:  # the code before the kernel, as ``--before`` runs it
        attention_kernel = None

    def best_of(run: Callable[[], object]) -> float:
        run()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            runs.append(time.perf_counter() - start)
        return min(runs)

    seconds = {}
    for dtype, precision in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        q, k, v = (torch.randn(batch, heads, tokens, head_width, dtype=dtype) for _ in range(3))
        for backend, kernel in ((SDPBackend.FLASH_ATTENTION, "flash"), (SDPBackend.MATH, "math")):
            with sdpa_kernel(backend), torch.inference_mode():
                seconds[f"{precision} {kernel}"] = best_of(lambda: torch.nn.functional.scaled_dot_product_attention(
                    q, k, v))
        if precision == "bf16" and attention_kernel and attention_kernel("cpu", precision, head_width) == KERNEL:
            with torch.inference_mode():
                seconds[f"{precision} {KERNEL}"] = best_of(lambda: attention(q, k, v))
    return seconds
