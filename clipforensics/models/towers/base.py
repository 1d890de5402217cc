"""What every tower is beside its features."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def transformers_sizes(config: BackboneConfig) -> dict:
    """The architecture as transformers' ViT configs name it (the towers built on transformers share these)."""
    return {"hidden_size": config.width, "intermediate_size": config.mlp_width, "num_hidden_layers": config.layers,
            "num_attention_heads": config.heads, "patch_size": config.patch_size, "image_size": config.image_size,
            "layer_norm_eps": 1e-5, "attn_implementation": "sdpa"}


class Tower(nn.Module):
    """A vision tower: its config, ``width`` and ``grid``; ``vision`` is the family's model, whose tensors
    checkpoints name ``backbone.vision.*``.

    Every tower has ``forward(pixels)`` (the pooled feature, [B, width]), ``tokens(pixels, layer)`` (block
    ``layer``'s output, class token first and nothing but the patch grid after it, [B, 1 + grid^2, width];
    later blocks are not run) and ``pooled_and_tokens(pixels, layer)`` (both from one pass)."""

    def __init__(self, config: BackboneConfig, vision: nn.Module):
        super().__init__()
        self.config = config
        self.vision = vision

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def grid(self) -> int:
        return self.config.grid
