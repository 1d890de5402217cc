"""Detection and localization from one forward pass: the LN-tuned detector's head on the final class
token and a DeCLIP decoder on block ``layer``'s patch tokens of the same backbone (none of the published
systems does both). With the same weights, its map is the stand-alone localizer's and its logits the
stand-alone detector's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .backbones import BackboneConfig, build_backbone, known_backbone
from ..transforms import Preprocessing
from .detector import ClipDetector, DetectorConfig, DetectorOutput
from .localizer import DecoderSpec, build_decoder, initialise_decoder


@dataclass(frozen=True)
class JointConfig(DetectorConfig):
    layer: int = 20
    decoder: str = "conv-20"

    def __post_init__(self) -> None:
        super().__post_init__()
        DecoderSpec.parse(self.decoder)
        if not 0 <= self.layer < self.backbone.layers:
            raise ValueError(f"layer must be in 0..{self.backbone.layers - 1} for this backbone, not {self.layer}")

    def to_dict(self) -> dict:
        return {**super().to_dict(), "kind": "joint", "layer": self.layer, "decoder": self.decoder}

    @classmethod
    def from_dict(cls, data: dict) -> JointConfig:
        detector = DetectorConfig.from_dict(data)
        return cls(detector.backbone, detector.head, detector.labels, detector.preprocessing, data["layer"],
                   data["decoder"])


@dataclass
class JointOutput(DetectorOutput):
    maps: torch.Tensor
    """[B, 1, map, map] logits of "manipulated" per pixel."""


class JointModel(ClipDetector):
    """A ``ClipDetector`` that also decodes a manipulation map from an intermediate block."""

    config: JointConfig

    def __init__(self, config: JointConfig):
        super().__init__(config)
        self.decoder = build_decoder(config.decoder, config.backbone.width)

    def forward_parts(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled feature (for ``forward_head``) and the map logits, from one pass."""
        pooled, tokens = self.backbone.pooled_and_tokens(pixels, self.config.layer)
        return pooled, self.decoder(tokens)

    def forward(self, pixels: torch.Tensor, maps: bool = True) -> JointOutput | DetectorOutput:
        """Logits, features and maps; with ``maps=False`` the detector's output alone (the decoder is
        not run)."""
        if not maps:
            return super().forward(pixels)
        features, logits_map = self.forward_parts(pixels)
        head = self.forward_head(features)
        return JointOutput(head.logits, head.features, logits_map)


def create_joint(backbone: str | BackboneConfig, head: str = "LinearNorm", layer: int = 20,
                 decoder: str = "conv-20", weights: str | Path | None = None) -> JointModel:
    """A joint model with the detector's preprocessing (CLIP's crop) and a freshly initialised decoder."""
    backbone_config = known_backbone(backbone) if isinstance(backbone, str) else backbone
    config = JointConfig(backbone_config, head, preprocessing=Preprocessing(size=backbone_config.image_size),
                         layer=layer, decoder=decoder)
    model = JointModel(config)
    if weights is not None:
        model.backbone = build_backbone(backbone_config, weights)
    initialise_decoder(model.decoder)
    return model
