"""DeCLIP's decoders: a frozen CLIP ViT's patch tokens at one block, decoded to a map of manipulated pixels.

The backbone runs up to block ``layer`` only (DeCLIP's released models read block 20 of ViT-L/14's 24);
its patch tokens, class token dropped, form the ``grid x grid`` feature map a decoder turns into logits
at 16 pixels per token (256 x 256 for a 16 x 16 grid):

- ``conv-N``: four stages, each N/4 x (Conv 5x5 + BatchNorm + ReLU) then x2 bilinear upsampling,
  channels width -> 512 -> 256 -> 128 -> 64, and a final Conv 5x5 to one channel;
- ``linear``: one linear map per token, bicubic upsampling;
- ``attention``: two residual attention blocks over all tokens (with DeCLIP's causal mask), then
  ``linear``.

Module and parameter names follow DeCLIP's (``fc``, ``att1``, ``att2``), so its checkpoints load as they are.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..transforms import Preprocessing

CONV_CHANNELS = (512, 256, 128, 64)
PIXELS_PER_TOKEN = 16
DECLIP_CONVS = ("conv-4", "conv-12", "conv-20")
"""The conv decoders of DeCLIP's paper."""


def declip_preprocessing(size: int = 224) -> Preprocessing:
    """DeCLIP's input: the whole image resized to size x size (PIL bilinear), CLIP mean and std."""
    return Preprocessing(size=size, mode="squash", interpolation="bilinear")


@dataclass(frozen=True)
class DecoderSpec:
    """A decoder name (``conv-N`` with N a multiple of 4, ``linear``, ``attention``) parsed once."""

    kind: str
    convs_per_stage: int = 0

    @classmethod
    def parse(cls, name: str) -> DecoderSpec:
        named = [kind for kind in DECODER_KINDS if kind != "conv"]
        if name in named:
            return cls(name)
        match = re.fullmatch(r"conv-(\d+)", name)
        if not match or int(match[1]) < 4 or int(match[1]) % 4:
            raise ValueError(f"decoder must be conv-N (N a multiple of 4, e.g. {', '.join(DECLIP_CONVS)}), "
                             f"{' or '.join(named)}, not {name!r}")
        return cls("conv", int(match[1]) // 4)

    def __str__(self) -> str:
        return f"conv-{4 * self.convs_per_stage}" if self.kind == "conv" else self.kind


class ConvDecoder(nn.Module):
    """``conv-N``: the grid [B, width, g, g] to logits [B, 1, 16g, 16g]."""

    def __init__(self, width: int, convs_per_stage: int):
        super().__init__()
        layers: list[nn.Module] = []
        for inputs, outputs in zip((width, *CONV_CHANNELS), CONV_CHANNELS):
            for number in range(convs_per_stage):
                layers += [nn.Conv2d(inputs if number == 0 else outputs, outputs, kernel_size=5, padding=2),
                           nn.BatchNorm2d(outputs), nn.ReLU()]
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        layers.append(nn.Conv2d(CONV_CHANNELS[-1], 1, kernel_size=5, padding=2))
        self.fc = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(to_grid(tokens))


class LinearDecoder(nn.Module):
    """``linear``: one logit per patch token, upsampled bicubically to 16 pixels per token."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(width, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.fc(tokens[:, 1:])[..., 0]
        grid = int(logits.shape[1] ** 0.5)
        small = logits.reshape(-1, 1, grid, grid)
        return F.interpolate(small, scale_factor=PIXELS_PER_TOKEN, mode="bicubic", align_corners=False)


class ResidualAttention(nn.Module):
    """OpenAI CLIP's residual attention block (pre-LayerNorm, QuickGELU MLP), with its parameter names."""

    def __init__(self, width: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, width // 64, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(),
                                             c_proj=nn.Linear(4 * width, width)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        count = tokens.shape[1]
        causal = torch.full((count, count), float("-inf"), device=tokens.device, dtype=tokens.dtype).triu_(1)
        normed = self.ln_1(tokens)
        tokens = tokens + self.attn(normed, normed, normed, need_weights=False, attn_mask=causal)[0]
        return tokens + self.mlp(self.ln_2(tokens))


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class AttentionDecoder(LinearDecoder):
    """``attention``: two residual attention blocks over all tokens, then ``linear``. As in DeCLIP, the
    blocks attend causally (each token to those before it), as CLIP's text tower does."""

    def __init__(self, width: int):
        super().__init__(width)
        self.att1 = ResidualAttention(width)
        self.att2 = ResidualAttention(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return super().forward(self.att2(self.att1(tokens)))


def to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """Patch tokens [B, 1 + g^2, C] (class token first) to the feature map [B, C, g, g], row-major."""
    patches = tokens[:, 1:]
    grid = int(patches.shape[1] ** 0.5)
    return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], grid, grid)


DECODER_KINDS: dict[str, Callable[[int, DecoderSpec], nn.Module]] = {
    "conv": lambda width, spec: ConvDecoder(width, spec.convs_per_stage),
    "linear": lambda width, _: LinearDecoder(width),
    "attention": lambda width, _: AttentionDecoder(width),
}
"""Each kind of decoder, built for tokens of ``width`` channels from its parsed name."""


def build_decoder(name: str, width: int) -> nn.Module:
    """The decoder ``name`` for tokens of ``width`` channels: tokens [B, 1 + g^2, width] to logits [B, 1, 16g, 16g]."""
    spec = DecoderSpec.parse(name)
    return DECODER_KINDS[spec.kind](width, spec)


def initialise_decoder(decoder: nn.Module) -> None:
    """DeCLIP's start: every weight of the ``fc`` stack drawn from normal(0, 0.02), BatchNorm scales
    included; biases and the attention blocks keep PyTorch's defaults."""
    for module in decoder.fc:
        if getattr(module, "weight", None) is not None:
            nn.init.normal_(module.weight, 0.0, 0.02)
