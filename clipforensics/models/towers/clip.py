"""CLIP's vision tower (transformers' ``CLIPVisionModel``): its ``pooler_output``, the post-LayerNorm class
token before CLIP's visual projection, is the detector's feature, as in the papers' code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from .base import TransformersTower, transformers_sizes

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def clip_vision_config(config: BackboneConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(**transformers_sizes(config), hidden_act="quick_gelu")


class QuickGelu(nn.Module):
    """CLIP's activation ``x * sigmoid(1.702 x)``, bit for bit transformers' ``QuickGELUActivation``. Where no
    gradient is wanted it works in place, like ``nn.ReLU(inplace=True)`` (the first MLP linear's output it reads is
    read by nothing else), a slice at a time: a fresh buffer the size of the activation (67 MB a ViT-L/14 block at
    batch 32 in bf16) costs more to fault in than the arithmetic on it (36 ms against 17 ms in place; fp32 51 ms
    against 14 ms)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            return x * torch.sigmoid(1.702 * x)
        if not x.is_contiguous():
            return (x * 1.702).sigmoid_().mul_(x)
        for part in x.view(-1).split(QUICK_GELU_SLICE):
            part.mul_((part * 1.702).sigmoid_())
        return x


QUICK_GELU_SLICE = 1 << 20
"""Elements of the activation computed at a time in place: 2 MB of bf16, small enough for the allocator to reuse."""


class ClipBackbone(TransformersTower):
    """CLIP vision tower: pooled or per-block features."""

    def __init__(self, config: BackboneConfig):
        super().__init__(config, CLIPVisionModel(clip_vision_config(config)))
        for block in self.blocks:
            block.mlp.activation_fn = QuickGelu()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled feature: the post-LayerNorm CLS token, [B, width]."""
        return self.vision(pixel_values=pixels).pooler_output

    @property
    def blocks(self) -> nn.ModuleList:
        return self.vision.encoder.layers

    @property
    def attentions(self) -> list[nn.Module]:
        return [layer.self_attn for layer in self.blocks]

    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
        return self.vision.pre_layrnorm(self.vision.embeddings(pixels)), lambda block, hidden: block(hidden, None)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.vision.post_layernorm(hidden[:, 0])
