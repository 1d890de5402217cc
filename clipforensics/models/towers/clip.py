"""CLIP's vision tower (transformers' ``CLIPVisionModel``): its ``pooler_output``, the post-LayerNorm class
token before CLIP's visual projection, is the detector's feature, as in the papers' code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from .activations import QuickGelu
from .base import TransformersTower, transformers_sizes

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def clip_vision_config(config: BackboneConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(**transformers_sizes(config), hidden_act="quick_gelu")


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
