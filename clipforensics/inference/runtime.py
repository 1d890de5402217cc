"""Where and in which precision the model runs (torch is imported on use: the command line reads
``PRECISIONS`` for its help)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from functools import cache
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


def cpu_has_fast_bf16() -> bool:
    from ..models.precision import cpu_flags

    return not cpu_flags().isdisjoint({"amx_bf16", "avx512_bf16"})


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
    batch in bf16 took 1.10-1.16x as long); a model pass keeps its activations on the heap between trims
    (``activations_on_the_heap``), so it pays the page faults once per pass, not once per op."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def activations_on_the_heap(device: torch.device) -> Iterator[None]:
    """While a model pass runs on the CPU, glibc serves every allocation from its heap: by default it maps each
    buffer over 32 MB afresh and unmaps it when freed, so a ViT-L/14 at batch 32 faults in every activation of every
    block anew (a fp32 [32, 257, 1024] is 34 MB; a 67 MB buffer takes 20 ms to fault in and 4 ms to fill), where
    from the heap a freed buffer is reused. Afterwards glibc's own setting is back; the freed pages stay for the next
    pass until a run gives them back (``release_freed_memory``, once per group of inputs), since giving them back
    after every pass would have the next one fault them in again. Measured on that case (AMD EPYC, a fresh process
    each): bf16 16.8 -> 15.4 s a pass, fp32 33.0 -> 31.5 s; the pass's peak above the loaded model 275 -> 360 MB in
    bf16, 301 -> 643 MB in fp32 (the heap's fragments). Concurrent passes share the setting."""
    mallopt = _libc_function("mallopt")
    if device.type != "cpu" or mallopt is None:
        yield
        return
    global _heap_passes
    with _heap_lock:
        if _heap_passes == 0:
            mallopt(M_MMAP_MAX, 0)
        _heap_passes += 1
    try:
        yield
    finally:
        with _heap_lock:
            _heap_passes -= 1
            if _heap_passes == 0:
                mallopt(M_MMAP_MAX, GLIBC_MMAP_MAX)


M_MMAP_MAX, GLIBC_MMAP_MAX = -4, 65536
"""mallopt's parameter for how many allocations glibc may map at once, and glibc's default for it."""
_heap_lock = threading.Lock()
_heap_passes = 0


@cache
def _libc_function(name: str) -> Callable[..., int] | None:
    import ctypes
    import ctypes.util

    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library and "libc" in library else None
    except (OSError, AttributeError):  # not glibc: nothing to set or give back this way
        return None
