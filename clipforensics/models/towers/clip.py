"""CLIP's vision tower (transformers' ``CLIPVisionModel``): its ``pooler_output``, the post-LayerNorm class
token before CLIP's visual projection, is the detector's feature, as in the papers' code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from .base import Tower, transformers_sizes

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def clip_vision_config(config: BackboneConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(**transformers_sizes(config), hidden_act="quick_gelu")


class ClipBackbone(Tower):
    """CLIP vision tower: pooled or per-block features."""

    def __init__(self, config: BackboneConfig):
        super().__init__(config, CLIPVisionModel(clip_vision_config(config)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled feature: the post-LayerNorm CLS token, [B, width]."""
        return self.vision(pixel_values=pixels).pooler_output

    def tokens(self, pixels: torch.Tensor, layer: int) -> torch.Tensor:
        """Output of transformer block ``layer`` (0-based, before any final LayerNorm), class token
        first, [B, 1 + grid^2, width]; the blocks after it are not run."""
        self.config.check_layer(layer)
        hidden = self.vision.pre_layrnorm(self.vision.embeddings(pixels))
        for block in self.vision.encoder.layers[: layer + 1]:
            hidden = block(hidden, None)
        return hidden

    def pooled_and_tokens(self, pixels: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled feature and block ``layer``'s tokens from one pass through every block."""
        tapped = self.tokens(pixels, layer)
        hidden = tapped
        for block in self.vision.encoder.layers[layer + 1 :]:
            hidden = block(hidden, None)
        return self.vision.post_layernorm(hidden[:, 0]), tapped
