"""The towers' MLP activations: CLIP's quick_gelu and GELU, bit for bit as transformers and torch compute them, in
place where no gradient is wanted (the first MLP linear's output they read is read by nothing else), in bf16 on the
CPUs ``bf16_kernels`` runs on by table."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .bf16_kernels import activated_in_place


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's activation ``x * sigmoid(1.702 x)``, as transformers' ``QuickGELUActivation`` computes it."""
    return x * torch.sigmoid(1.702 * x)


class QuickGelu(nn.Module):
    """``quick_gelu``. In place, like ``nn.ReLU(inplace=True)``, a slice at a time: a fresh buffer the size of the
    activation (67 MB a ViT-L/14 block at batch 32 in bf16) costs more to fault in than the arithmetic on it (36 ms
    against 17 ms in place; fp32 51 ms against 14 ms); by table, 6 ms."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            return quick_gelu(x)
        if activated_in_place(x, quick_gelu):
            return x
        if not x.is_contiguous():
            return (x * 1.702).sigmoid_().mul_(x)
        for part in x.view(-1).split(QUICK_GELU_SLICE):
            part.mul_((part * 1.702).sigmoid_())
        return x


QUICK_GELU_SLICE = 1 << 20
"""Elements of the activation computed at a time in place: 2 MB of bf16, small enough for the allocator to reuse."""


class Gelu(nn.Module):
    """GELU (erf), as ``nn.GELU`` and transformers' ``gelu`` compute it; in bf16, by table in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if activated_in_place(x, F.gelu):
            return x
        return F.gelu(x)
