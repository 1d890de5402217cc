"""Attention probabilities recorded for explanations, without moving the model's numbers by a bit.

A recorder recomputes each attention's probabilities ``A = softmax(q k^T * scale)`` beside the attention's own
kernel (SDPA) and joins them to the kernel's output by a term that is exactly zero, ``y - y.detach()`` with
``y = A v``: the forward values stay the kernel's, while gradients flow through ``A`` as they would through an
eager attention, so that ``∂s/∂A`` exists for every block.
"""

from __future__ import annotations

import torch


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
            probabilities = (query.float() @ key.float().transpose(-2, -1) * scale).softmax(dim=-1)
            eager = (probabilities @ value.float()).to(output.dtype)
        self.probabilities.append(probabilities)
        return output.detach() + (eager - eager.detach())


RECORDED = "clipforensics-recorded"
"""The attention implementation transformers' towers switch to while recording (SDPA, joined to a recorder)."""


def _recorded_sdpa(module, query, key, value, attention_mask, scaling=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    return module.recorder.joined(query, key, value, output.transpose(1, 2), scaling).transpose(1, 2), None


def register_with_transformers() -> None:
    """Makes ``RECORDED`` an attention implementation transformers' models can be switched to (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(RECORDED, _recorded_sdpa)
