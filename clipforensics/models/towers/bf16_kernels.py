"""bf16 on CPUs with AVX512-BF16 and no AMX, in a small C library of our own (``bf16_kernels.c``):

* the towers' attention, 2.5x as fast as SDPA's CPU flash kernel, in the same precisions. On such CPUs torch's
  flash kernel ran a ViT-L/14's attention (batch 32, 257 tokens, head width 64) at about 4x its matmul bound, 15 %
  of a bf16 forward; the math path is slower still. The kernel works each (batch, head) pair whole, its keys and
  values repacked once for VDPBF16PS. Where the CPU has AMX, torch's flash kernel runs on AMX tiles, and SDPA stays;
* the MLPs' activations, in place, by looking each value up in a table of the activation's result for every one of
  the 65536 bf16 values, made by torch's own activation: the same bits, a third of the time.

The library is compiled with the system's C compiler (``CC``, else ``cc``) at its first use on a machine, into
``CLIPFORENSICS_CACHE/kernels``, and reused after. Without a compiler, on another CPU, in float32, or for another
head width, attention is SDPA's and activations torch's; ``CLIPFORENSICS_ATTENTION=sdpa`` makes them so everywhere.
bf16 attention differs from SDPA's by bf16 rounding (the kernel's error against float32 attention is the flash
kernel's, tested); float32 results are SDPA's and torch's, bit for bit.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...cache import CACHE
from ..precision import cpu_flags

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("bf16_kernels.c")
FLAGS = ("-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mfma", "-fopenmp", "-fPIC", "-shared")
HEAD_WIDTH = 64
"""The head width the kernel is written for (every tower here: CLIP, DINOv3 and PE, B and L)."""
KERNEL, SDPA = "clipforensics-bf16", "sdpa"
"""How a run header names the attention a bf16 pass ran: this kernel, or SDPA."""


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """``F.scaled_dot_product_attention(query, key, value, scale=scale)`` of [B, heads, tokens, width] tensors,
    through the kernel where it ``applies``."""
    if applies(query, key, value):
        return attention(query, key, value, scale)
    return F.scaled_dot_product_attention(query, key, value, scale=scale)


def applies(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> bool:
    """Whether the kernel computes this attention (without a mask): bf16 tensors of its head width on a CPU it runs
    on."""
    tensors = (query, key, value)
    return (query.dtype == torch.bfloat16 and attention_kernel(query.device, "bf16", query.shape[-1]) == KERNEL
            and all(tensor.dtype == query.dtype and tensor.device == query.device and tensor.dim() == 4
                    and tensor.stride(-1) == 1 and tensor.shape[-1] == query.shape[-1] for tensor in tensors)
            and key.shape == value.shape and key.shape[:2] == query.shape[:2] and key.shape[2] > 0
            and key.stride(2) * 16 < 2**31  # the kernel gathers 16 keys by 32-bit offsets
            and query.numel() > 0)


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """The kernel's attention where it ``applies``: [B, heads, queries, width], laid out [B, queries, heads,
    width] as the towers read it next; differentiable (``KernelAttention``)."""
    return KernelAttention.apply(query, key, value, query.shape[-1] ** -0.5 if scale is None else scale)


class KernelAttention(torch.autograd.Function):
    """The kernel's output, differentiated as float32 attention at the same inputs (explanations take gradients
    through it, so that an explained face keeps the p_fake its plain pass gave)."""

    @staticmethod
    def forward(ctx, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(query, key, value)
        ctx.scale = scale
        batch, heads, queries, width = query.shape
        output = torch.empty(batch, queries, heads, width, dtype=torch.bfloat16).transpose(1, 2)
        done = _library().attention(
            *(ctypes.c_void_p(tensor.data_ptr()) for tensor in (query, key, value, output)), batch, heads, queries,
            key.shape[2], *(_strides(tensor) for tensor in (query, key, value, output)), scale,
            torch.get_num_threads())
        if done != 0:
            raise MemoryError("bf16 attention: out of memory for its buffers")
        return output

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        inputs = ctx.saved_tensors
        with torch.enable_grad(), torch.autocast("cpu", enabled=False):
            widened = [tensor.detach().float().requires_grad_() for tensor in inputs]
            output = F.scaled_dot_product_attention(*widened, scale=ctx.scale)
            gradients = torch.autograd.grad(output, widened, gradient.float())
        return (*(gradient.to(tensor.dtype) for gradient, tensor in zip(gradients, inputs)), None)


def attention_kernel(device: torch.device | str, precision: str, head_width: int) -> str:
    """Which attention the blocks of a tower with heads ``head_width`` wide run on ``device`` in ``precision``:
    ``KERNEL`` or ``SDPA``."""
    runs_kernel = precision == "bf16" and torch.device(device).type == "cpu" and head_width == HEAD_WIDTH
    return KERNEL if runs_kernel and _library() is not None else SDPA


def activated_in_place(x: torch.Tensor, activation: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Applies ``activation`` (a function of each value alone) to ``x`` in place through its table, where ``x`` is a
    contiguous bf16 tensor on a CPU the kernels run on, not to be differentiated; returns whether it did."""
    if (x.dtype != torch.bfloat16 or x.device.type != "cpu" or not x.is_contiguous() or x.requires_grad
            or _library() is None):
        return False
    _library().tabulated(ctypes.c_void_p(x.data_ptr()), x.numel(), ctypes.c_void_p(_table(activation).data_ptr()),
                         torch.get_num_threads())
    return True


@functools.cache
def _table(activation: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``activation`` of every bf16 value, as bits, in the order of the values' bits."""
    values = torch.from_numpy(np.arange(1 << 16, dtype=np.uint16)).view(torch.bfloat16)
    with torch.inference_mode():
        return activation(values).contiguous().view(torch.uint16)


def _strides(tensor: torch.Tensor) -> ctypes.Array:
    return (ctypes.c_int64 * 3)(*tensor.stride()[:3])


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they do not apply to this machine or cannot be built (said once)."""
    if os.environ.get("CLIPFORENSICS_ATTENTION", "").strip().lower() == SDPA or not _cpu_runs_kernel():
        return None
    try:
        library = ctypes.CDLL(str(_built()))
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("bf16 attention and activations run on torch's kernels: ours could not be built (%s)", error)
        return None
    library.attention.restype = ctypes.c_int
    library.attention.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 4 + [ctypes.POINTER(ctypes.c_int64)] * 4 \
        + [ctypes.c_float, ctypes.c_int]
    library.tabulated.restype = None
    library.tabulated.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int]
    return library


def _cpu_runs_kernel() -> bool:
    """Whether this CPU has the instructions the kernel is built for and no AMX (where SDPA's kernel is faster)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    flags = cpu_flags()
    return {"avx512f", "avx512bw", "avx512vl", "avx512_bf16"} <= flags and "amx_bf16" not in flags


def _built() -> Path:
    """The kernel's shared library in the cache, compiled first where this source and these flags never were."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(FLAGS).encode()).hexdigest()[:16]
    target = CACHE / "kernels" / f"bf16_kernels-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if compiler is None:
        raise OSError(f"no C compiler ({os.environ.get('CC') or 'cc'}) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, building = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", building], check=True, capture_output=True,
                       timeout=120)
        os.replace(building, target)
    except subprocess.CalledProcessError as error:
        raise OSError(f"{compiler} failed: {error.stderr.decode(errors='replace').strip()[:300]}") from None
    finally:
        Path(building).unlink(missing_ok=True)
    return target
