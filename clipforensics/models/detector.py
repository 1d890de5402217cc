"""The LN-tuned CLIP detector's head: a linear map of the pooled class token to real/fake logits,
``LinearNorm`` on the unit sphere (the feature L2-normalised first, as in the papers' code)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("linear", "LinearNorm")


class ClassifierHead(nn.Linear):
    """``linear`` or ``LinearNorm``; its tensors are a plain ``nn.Linear``'s (``head.weight``, ``head.bias``)."""

    def __init__(self, width: int, classes: int, kind: str = "LinearNorm"):
        super().__init__(width, classes)
        self.normalizes = kind == "LinearNorm"

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, classes] and the L2-normalised feature [B, width] the metric losses act on."""
        features = F.normalize(pooled, p=2, dim=1)
        return super().forward(features if self.normalizes else pooled), features
