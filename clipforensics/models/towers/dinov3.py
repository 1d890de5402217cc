"""DINOv3's ViT (transformers' ``DINOv3ViTModel``): the class token after the final norm is GenD's feature."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from .activations import Gelu
from .base import TransformersTower, transformers_sizes

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def dinov3_vit_config(config: BackboneConfig) -> DINOv3ViTConfig:
    """DINOv3 ViT-S/B/L's settings (GELU MLP, no key bias, layer scale, RoPE theta 100)."""
    return DINOv3ViTConfig(**transformers_sizes(config), num_register_tokens=config.registers, hidden_act="gelu",
                           rope_theta=100.0, key_bias=False, use_gated_mlp=False)


class Dinov3Backbone(TransformersTower):
    """DINOv3 ViT: pooled or per-block features; the register tokens are dropped from the per-block tokens,
    so that they read as a CLIP tower's (class token, then the grid)."""

    def __init__(self, config: BackboneConfig):
        super().__init__(config, DINOv3ViTModel(dinov3_vit_config(config)))
        for block in self.blocks:
            block.mlp.act_fn = Gelu()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled feature: the class token after the final norm, [B, width] (GenD's feature)."""
        return self.vision(pixel_values=pixels).pooler_output

    @property
    def blocks(self) -> nn.ModuleList:
        return self.vision.model.layer

    @property
    def attentions(self) -> list[nn.Module]:
        return [layer.attention for layer in self.blocks]

    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
        pixels = pixels.to(self.vision.embeddings.patch_embeddings.weight.dtype)
        hidden, rope = self.vision.embeddings(pixels), self.vision.rope_embeddings(pixels)
        return hidden, lambda block, tokens: block(tokens, position_embeddings=rope)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.vision.norm(hidden[:, 0])

    def grid_tokens(self, hidden: torch.Tensor) -> torch.Tensor:
        """The register tokens dropped."""
        return torch.cat([hidden[:, :1], hidden[:, 1 + self.config.registers :]], dim=1)
