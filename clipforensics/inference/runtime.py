"""Where and in which precision the model runs (torch is imported on use: the command line reads
``PRECISIONS`` for its help)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None) is CUDA when there is a GPU, else the CPU; anything else must be a torch device
    that this machine has (``UsageError`` otherwise)."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"device {device!r} is not a torch device: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"device {device!r} asked for, but no CUDA device is available; use --device cpu")
        if resolved.index is not None and resolved.index >= count:
            raise UsageError(f"device {device!r} asked for, but this machine has {count} CUDA device(s): "
                             f"cuda:0 to cuda:{count - 1}")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is bf16 where bf16 matmuls are fast (CUDA, CPUs with AMX or AVX512-BF16), else fp32."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


@cache
def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision as in training (``bf16-mixed``): matmuls in bf16, norms and softmax in fp32."""
    if precision == "bf16":
        import torch

        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def release_freed_memory() -> None:
    """Has glibc give the pages of freed buffers back to the system (``malloc_trim``; nothing elsewhere).

    Called once per model batch, it keeps a long video's decoded and drawn frames -- megabytes each, freed in
    another order than taken -- from holding memory that grows with the video in glibc's fragmented heap. It
    replaces pinning glibc's mmap threshold at 1 MB for the whole process, which kept memory as flat (the same
    peaks, measured) but had every large tensor of the model mapped and zeroed afresh on each op (a ViT-B/16
    batch in bf16 took 1.10-1.16x as long): between trims the model reuses its freed buffers as usual, and pays
    the page faults once per batch, not once per op."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name and "libc" in name else None
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None
