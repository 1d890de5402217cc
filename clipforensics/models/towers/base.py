"""What every tower is beside its features."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from .attention import ATTENTION, RECORDED, AttentionRecorder, register_with_transformers

if TYPE_CHECKING:
    from ..backbones import BackboneConfig


def transformers_sizes(config: BackboneConfig) -> dict:
    """The architecture as transformers' ViT configs name it (the towers built on transformers share these), with
    the tower's attention implementation (registered here)."""
    register_with_transformers()
    return {"hidden_size": config.width, "intermediate_size": config.mlp_width, "num_hidden_layers": config.layers,
            "num_attention_heads": config.heads, "patch_size": config.patch_size, "image_size": config.image_size,
            "layer_norm_eps": 1e-5, "attn_implementation": ATTENTION}


class Tower(nn.Module, ABC):
    """A vision tower: its config, ``width`` and ``grid``; ``vision`` is the family's model, whose tensors
    checkpoints name ``backbone.vision.*``.

    Every tower has ``forward(pixels)`` (the pooled feature, [B, width]), ``tokens(pixels, layer)`` (block
    ``layer``'s output, class token first and nothing but the patch grid after it, [B, 1 + grid^2, width];
    later blocks are not run) and ``pooled_and_tokens(pixels, layer)`` (both from one pass). A family gives
    its ``blocks``, how the tokens entering them are made and a block is run (``embed``), and the pooled
    feature of the last block's output (``pool``); the pass that taps block ``layer`` is this class's.

    For explanations a tower names its ``attentions`` on the path to the pooled feature (a pooling attention
    last, when ``attention_pooled``) and records them while ``recording``; ``grid_tokens`` says which tokens are
    the patch grid."""

    attention_pooled = False
    """Whether the pooled feature is an attention pooling's, whose one query's attention is recorded last."""

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

    @property
    @abstractmethod
    def blocks(self) -> nn.ModuleList:
        """The transformer blocks, in order."""

    @abstractmethod
    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
        """The tokens entering block 0, and how a block runs on tokens (with this input's position terms)."""

    @abstractmethod
    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """The pooled feature [B, width] of the last block's output."""

    @property
    @abstractmethod
    def attentions(self) -> list[nn.Module]:
        """The attention modules on the path to the pooled feature, in the order they run."""

    @contextmanager
    def recording(self, recorder: AttentionRecorder) -> Iterator[None]:
        """While open, every one of ``attentions`` records its probabilities into ``recorder``."""
        for module in self.attentions:
            module.recorder = recorder
        try:
            yield
        finally:
            for module in self.attentions:
                module.recorder = None

    def last_input(self, pixels: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """The tokens entering the last block (every token, as the block takes them), and what makes the pooled
        feature of them (the last block and the pooling, run when called)."""
        hidden, run = self.embed(pixels)
        for block in self.blocks[:-1]:
            hidden = run(block, hidden)
        return hidden, lambda entering: self.pool(run(self.blocks[-1], entering))

    def grid_tokens(self, hidden: torch.Tensor) -> torch.Tensor:
        """A block's output as ``tokens`` gives it: class token first, then the patch grid."""
        return hidden

    def tokens(self, pixels: torch.Tensor, layer: int) -> torch.Tensor:
        """Output of block ``layer`` (0-based, before any final norm), class token first and nothing but the
        patch grid after it, [B, 1 + grid^2, width]; the blocks after it are not run."""
        return self._tap(pixels, layer, pooled=False)[1]

    def pooled_and_tokens(self, pixels: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled feature and block ``layer``'s tokens (as ``tokens`` gives them) from one pass through
        every block."""
        pooled, tapped = self._tap(pixels, layer, pooled=True)
        return pooled, tapped

    def _tap(self, pixels: torch.Tensor, layer: int, pooled: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        self.config.check_layer(layer)
        hidden, run = self.embed(pixels)
        for index, block in enumerate(self.blocks if pooled else self.blocks[: layer + 1]):
            hidden = run(block, hidden)
            if index == layer:
                tapped = hidden
        return (self.pool(hidden) if pooled else None), self.grid_tokens(tapped)


class TransformersTower(Tower):
    """A tower built on a transformers model, whose attentions are recorded by switching the model's attention
    implementation to a recording SDPA."""

    @contextmanager
    def recording(self, recorder: AttentionRecorder) -> Iterator[None]:
        config = self.vision.config
        implementation, config._attn_implementation = config._attn_implementation, RECORDED
        try:
            with super().recording(recorder):
                yield
        finally:
            config._attn_implementation = implementation
