"""DINOv3's ViT (transformers' ``DINOv3ViTModel``): the class token after the final norm is GenD's feature."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from .base import Tower, transformers_sizes

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def dinov3_vit_config(config: BackboneConfig) -> DINOv3ViTConfig:
    """DINOv3 ViT-S/B/L's settings (GELU MLP, no key bias, layer scale, RoPE theta 100)."""
    return DINOv3ViTConfig(**transformers_sizes(config), num_register_tokens=config.registers, hidden_act="gelu",
                           rope_theta=100.0, key_bias=False, use_gated_mlp=False)


class Dinov3Backbone(Tower):
    """DINOv3 ViT: pooled or per-block features; the register tokens are dropped from the per-block tokens,
    so that they read as a CLIP tower's (class token, then the grid)."""

    def __init__(self, config: BackboneConfig):
        super().__init__(config, DINOv3ViTModel(dinov3_vit_config(config)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled feature: the class token after the final norm, [B, width] (GenD's feature)."""
        return self.vision(pixel_values=pixels).pooler_output

    def tokens(self, pixels: torch.Tensor, layer: int) -> torch.Tensor:
        """Output of block ``layer`` (0-based, before the final norm), class token first and register tokens
        dropped, [B, 1 + grid^2, width]; the blocks after it are not run."""
        self.config.check_layer(layer)
        hidden, rope = self._embed(pixels)
        for block in self.vision.model.layer[: layer + 1]:
            hidden = block(hidden, position_embeddings=rope)
        return self._without_registers(hidden)

    def pooled_and_tokens(self, pixels: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled feature and block ``layer``'s tokens (as ``tokens`` gives them) from one pass."""
        self.config.check_layer(layer)
        hidden, rope = self._embed(pixels)
        for index, block in enumerate(self.vision.model.layer):
            hidden = block(hidden, position_embeddings=rope)
            if index == layer:
                tapped = hidden
        return self.vision.norm(hidden[:, 0]), self._without_registers(tapped)

    def _embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        pixels = pixels.to(self.vision.embeddings.patch_embeddings.weight.dtype)
        return self.vision.embeddings(pixels), self.vision.rope_embeddings(pixels)

    def _without_registers(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([hidden[:, :1], hidden[:, 1 + self.config.registers :]], dim=1)
