"""Attention probabilities recorded for explanations, without moving the model's numbers by a bit.

A recorder computes each attention's probabilities ``A = softmax(q k^T * scale)`` beside the attention's own
kernel (SDPA, or ``bf16_kernels``'s) and joins them to the kernel's output through ``ThroughProbabilities``: the
forward values stay the kernel's, while gradients flow as they would through an eager ``A v``, so that ``∂s/∂A``
exists for every block. The eager product itself is never computed: only its backward is.
"""

from __future__ import annotations

import torch

from .bf16_kernels import applies, attention


class AttentionRecorder:
    """Every recorded attention's probabilities [B, heads, queries, keys] (float32, in the autograd graph), in the
    order the attentions ran."""

    def __init__(self) -> None:
        self.probabilities: list[torch.Tensor] = []

    def joined(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor,
               scale: float | None) -> torch.Tensor:
        """``output`` [B, heads, queries, head_width] as the kernel gave it, its gradient routed through the
        recorded probabilities of ``query`` and ``key`` ([B, heads, N, head_width]) over ``value``."""
        scale = query.shape[-1] ** -0.5 if scale is None else scale
        with torch.autocast(query.device.type, enabled=False):
            probabilities = (query.float() * scale @ key.float().transpose(-2, -1)).softmax(dim=-1)
        self.probabilities.append(probabilities)
        return ThroughProbabilities.apply(output.detach(), probabilities, value)


class ThroughProbabilities(torch.autograd.Function):
    """``output`` as it is, differentiated as ``(probabilities @ value.float()).to(output.dtype)``."""

    @staticmethod
    def forward(ctx, output: torch.Tensor, probabilities: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(probabilities, value)
        return output.view_as(output)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> tuple[None, torch.Tensor, torch.Tensor]:
        probabilities, value = ctx.saved_tensors
        gradient = gradient.float()
        return (None, gradient @ value.float().transpose(-2, -1),
                (probabilities.transpose(-2, -1) @ gradient).to(value.dtype))


ATTENTION = "clipforensics"
"""The attention implementation transformers' towers run: ``bf16_kernels``'s kernel where it applies, else
transformers' SDPA."""
RECORDED = "clipforensics-recorded"
"""The attention implementation transformers' towers switch to while recording (``ATTENTION``'s, joined to a
recorder)."""


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    if attention_mask is None and not dropout and not getattr(module, "is_causal", False) \
            and applies(query, key, value):
        return attention(query, key, value, scaling).transpose(1, 2), None
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                  **kwargs)


def _recorded(module, query, key, value, attention_mask, scaling=None, **kwargs):
    output, _ = _attention(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    return module.recorder.joined(query, key, value, output.transpose(1, 2), scaling).transpose(1, 2), None


def register_with_transformers() -> None:
    """Makes ``ATTENTION`` and ``RECORDED`` attention implementations transformers' models can be built with and
    switched to (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, _attention)
    AttentionInterface.register(RECORDED, _recorded)
