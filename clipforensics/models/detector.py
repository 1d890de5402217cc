"""LN-tuned CLIP detector: CLIP vision tower, pooled CLS feature, linear head (optionally on the unit sphere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BackboneConfig, ClipBackbone, build_backbone, known_backbone
from ..transforms import Preprocessing

HEADS = ("linear", "LinearNorm")


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild the detector and its input pipeline."""

    backbone: BackboneConfig
    head: str = "LinearNorm"
    labels: tuple[str, ...] = ("real", "fake")
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {self.head!r}")
        if "fake" not in self.labels:
            raise ValueError(f"labels must name a 'fake' class, got {self.labels}")

    @property
    def fake_index(self) -> int:
        return self.labels.index("fake")

    def to_dict(self) -> dict:
        return {
            "kind": "detector",
            "backbone": self.backbone.to_dict(),
            "head": self.head,
            "labels": list(self.labels),
            "preprocessing": self.preprocessing.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DetectorConfig:
        return cls(
            backbone=BackboneConfig.from_dict(data["backbone"]),
            head=data["head"],
            labels=tuple(data["labels"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
        )


@dataclass
class DetectorOutput:
    logits: torch.Tensor
    """[B, classes]"""
    features: torch.Tensor
    """[B, width], L2-normalised: the points on the hypersphere the metric losses act on."""


class ClipDetector(nn.Module):
    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        self.backbone = ClipBackbone(config.backbone)
        self.head = nn.Linear(config.backbone.width, len(config.labels))

    def forward_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixels)

    def forward_head(self, features: torch.Tensor) -> DetectorOutput:
        normalized = F.normalize(features, p=2, dim=1)
        inputs = normalized if self.config.head == "LinearNorm" else features
        return DetectorOutput(logits=self.head(inputs), features=normalized)

    def forward(self, pixels: torch.Tensor) -> DetectorOutput:
        return self.forward_head(self.forward_features(pixels))


def create_detector(
    backbone: str | BackboneConfig, head: str = "LinearNorm", weights: str | Path | None = None
) -> ClipDetector:
    """A detector and its matching preprocessing from a backbone name or config.

    ``weights``: None for random weights, a local Hugging Face CLIP folder, or ``"hub"``.
    """
    backbone_config = known_backbone(backbone) if isinstance(backbone, str) else backbone
    config = DetectorConfig(backbone_config, head, preprocessing=Preprocessing(size=backbone_config.image_size))
    model = ClipDetector(config)
    if weights is not None:
        model.backbone = build_backbone(backbone_config, weights)
    return model
