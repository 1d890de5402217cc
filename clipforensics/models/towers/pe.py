"""Meta's Perception Encoder (PE-Core) vision tower, computed as timm's ``Eva`` computes it for the
``vit_pe_core_*`` models with ``dynamic_img_size=True`` (GenD's setting), without timm (which needs
torchvision).

Patch embedding (no bias), a class token, an absolute position table learnt on the pretraining grid and
resampled (bicubic, antialiased) to the grid of the input, a LayerNorm before the blocks, pre-norm blocks
whose attention rotates the patch tokens' queries and keys with a 2-D rotary embedding (timm's
``RotaryEmbeddingCat``: x then y frequencies, interleaved pairs, positions offset by 1 and rescaled to the
pretraining grid), a final norm, and attention pooling with one learnt query. Modules carry timm's names, so
timm's and GenD's tensors load as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .activations import Gelu
from .attention import AttentionRecorder
from .bf16_kernels import attend
from .base import Tower

if TYPE_CHECKING:
    from ..backbones import BackboneConfig

POOL_HEADS = 8
"""Heads of the attention pooling in every PE-Core size (timm's ``attn_pool_num_heads``)."""
POOL_MLP_RATIO = 4
ROPE_TEMPERATURE = 10000.0
ROPE_GRID_OFFSET = 1.0
LAYERNORM_EPS = 1e-5


def rope_embedding(grid: tuple[int, int], reference: int, head_width: int) -> torch.Tensor:
    """[H*W, 2 * head_width]: sines then cosines for each patch (row-major), as timm's ``RotaryEmbeddingCat``
    gives them with ``in_pixels=False``, ``grid_indexing='xy'`` and a square ``ref_feat_shape``."""
    bands_count = head_width // 4
    bands = 1.0 / ROPE_TEMPERATURE ** (torch.arange(bands_count, dtype=torch.int64).to(torch.float32) / bands_count)
    height, width = grid
    xs = (torch.arange(width, dtype=torch.int64).to(torch.float32) + ROPE_GRID_OFFSET) / width * reference
    ys = (torch.arange(height, dtype=torch.int64).to(torch.float32) + ROPE_GRID_OFFSET) / height * reference
    positions = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).unsqueeze(-1) * bands  # [H, W, 2, n]
    sin = positions.sin().reshape(height * width, -1).repeat_interleave(2, -1)
    cos = positions.cos().reshape(height * width, -1).repeat_interleave(2, -1)
    return torch.cat([sin, cos], dim=-1)


def rotate(x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """Rotates interleaved pairs of ``x`` [..., N, D] by the angles in ``embedding`` [N, 2D]."""
    sin, cos = embedding.tensor_split(2, -1)
    turned = torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return x * cos + turned * sin


def resample_positions(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The class token's row and the patch rows resampled from the square table's grid to ``grid``."""
    reference = round((table.shape[1] - 1) ** 0.5)
    if grid == (reference, reference):
        return table
    width = table.shape[-1]
    patches = table[:, 1:].float().reshape(1, reference, reference, width).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=grid, mode="bicubic", antialias=True)
    patches = patches.permute(0, 2, 3, 1).reshape(1, -1, width).to(table.dtype)
    return torch.cat([table[:, :1], patches], dim=1)


class PatchEmbed(nn.Module):
    def __init__(self, width: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch_size, patch_size, bias=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels)


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = Gelu()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Self-attention whose queries and keys of the patch tokens (not the class token) are rotated."""

    recorder: AttentionRecorder | None = None

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        q = torch.cat([q[:, :, :1], rotate(q[:, :, 1:], rope)], dim=2).type_as(v)
        k = torch.cat([k[:, :, :1], rotate(k[:, :, 1:], rope)], dim=2).type_as(v)
        x = attend(q, k, v)
        if self.recorder is not None:
            x = self.recorder.joined(q, k, v, x, None)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_width: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYERNORM_EPS)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LAYERNORM_EPS)
        self.mlp = Mlp(width, mlp_width)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class AttentionPool(nn.Module):
    """One learnt query attends over every token; then a residual MLP (timm's ``AttentionPoolLatent``)."""

    recorder: AttentionRecorder | None = None

    def __init__(self, width: int):
        super().__init__()
        self.heads = POOL_HEADS
        self.latent = nn.Parameter(torch.zeros(1, 1, width))
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=LAYERNORM_EPS)
        self.mlp = Mlp(width, POOL_MLP_RATIO * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q = self.q(self.latent.expand(batch, -1, -1)).reshape(batch, 1, self.heads, -1).transpose(1, 2)
        k, v = self.kv(x).reshape(batch, tokens, 2, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        attended = attend(q, k, v)
        if self.recorder is not None:
            attended = self.recorder.joined(q, k, v, attended, None)
        pooled = self.proj(attended.transpose(1, 2).reshape(batch, 1, width))
        pooled = pooled + self.mlp(self.norm(pooled))
        return pooled[:, 0]


class PerceptionEncoder(nn.Module):
    """The PE-Core vision tower without its projection head; any input size that is a multiple of the patch."""

    def __init__(self, width: int, layers: int, heads: int, mlp_width: int, patch_size: int, position_grid: int):
        super().__init__()
        self.patch_size = patch_size
        self.position_grid = position_grid
        self.head_width = width // heads
        self.patch_embed = PatchEmbed(width, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + position_grid**2, width))
        self.norm_pre = nn.LayerNorm(width, eps=LAYERNORM_EPS)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_width) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=LAYERNORM_EPS)
        self.attn_pool = AttentionPool(width)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.attn_pool.latent, std=width**-0.5)

    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokens entering block 0 (class token first) and the rotary embedding of the input's grid."""
        pixels = pixels.to(self.patch_embed.proj.weight.dtype)
        patches = self.patch_embed(pixels)
        grid = (patches.shape[2], patches.shape[3])
        patches = patches.flatten(2).transpose(1, 2)
        hidden = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        hidden = self.norm_pre(hidden + resample_positions(self.pos_embed, grid))
        rope = rope_embedding(grid, self.position_grid, self.head_width).to(pixels.device)
        return hidden, rope

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The attention-pooled feature after the final norm, [B, width] (GenD's feature)."""
        hidden, rope = self.embed(pixels)
        for block in self.blocks:
            hidden = block(hidden, rope)
        return self.attn_pool(self.norm(hidden))


class PeBackbone(Tower):
    """Perception Encoder: pooled or per-block features; its attention pooling is on the explained path."""

    attention_pooled = True

    def __init__(self, config: BackboneConfig):
        super().__init__(config, PerceptionEncoder(config.width, config.layers, config.heads, config.mlp_width,
                                                   config.patch_size, config.position_grid))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vision(pixels)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.vision.blocks

    @property
    def attentions(self) -> list[nn.Module]:
        return [block.attn for block in self.blocks] + [self.vision.attn_pool]

    def embed(self, pixels: torch.Tensor) -> tuple[torch.Tensor, Callable[[nn.Module, torch.Tensor], torch.Tensor]]:
        hidden, rope = self.vision.embed(pixels)
        return hidden, lambda block, tokens: block(tokens, rope)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.vision.attn_pool(self.vision.norm(hidden))
