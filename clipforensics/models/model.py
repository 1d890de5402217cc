"""The one model contract: a vision tower (CLIP, DINOv3 or Perception Encoder) with a detection head, a DeCLIP
decoder, or both.

What a model does follows from its config: a head alone is the LN-tuned detector (p_fake from the
softmax of the head), a decoder alone is DeCLIP's localizer (the backbone runs up to block ``layer``
only; p_fake is the mean of the sigmoid map), both is the joint model (p_fake from the head on the final
class token and a map from block ``layer``'s tokens of the same pass). Every model answers the same
questions (``has_head``, ``has_decoder``, ``p_fake``) and returns one output type, so nothing outside
asks which class it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UsageError
from ..metrics import map_score
from ..transforms import Preprocessing
from .backbones import BackboneConfig, known_backbone
from .detector import HEADS, ClassifierHead
from .localizer import PIXELS_PER_TOKEN, DecoderSpec, build_decoder

KINDS = ("detector", "localizer", "joint")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model and its input pipeline.

    ``backbone``: an architecture, or one of the known names (OpenAI CLIP ViTs, DINOv3 and PE-Core ViTs).
    ``head``: linear | LinearNorm,
    or None for a localizer. ``decoder``: conv-N | linear | attention reading block ``layer``, or None
    for a detector. ``preprocessing`` defaults to the backbone's own (for CLIP: its crop with a head, DeCLIP's
    resize without).
    """

    backbone: BackboneConfig | str
    head: str | None = "LinearNorm"
    decoder: str | None = None
    layer: int = 20
    labels: tuple[str, ...] = ("real", "fake")
    preprocessing: Preprocessing | None = None

    def __post_init__(self) -> None:
        if isinstance(self.backbone, str):
            object.__setattr__(self, "backbone", known_backbone(self.backbone))
        if self.head is None and self.decoder is None:
            raise ValueError("a model needs a head, a decoder or both: set head or decoder (it has neither)")
        if self.head is not None and self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {self.head!r}")
        if self.decoder is not None:
            DecoderSpec.parse(self.decoder)
            self.backbone.check_layer(self.layer)
        if "fake" not in self.labels:
            raise ValueError(f"labels must name a 'fake' class, got {self.labels}")
        if self.preprocessing is None:
            object.__setattr__(self, "preprocessing", self.backbone.preprocessing(localizer=not self.has_head))

    @property
    def has_head(self) -> bool:
        return self.head is not None

    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None

    @property
    def kind(self) -> str:
        return "joint" if self.has_head and self.has_decoder else "detector" if self.has_head else "localizer"

    def require_decoder(self, purpose: str) -> None:
        """Refuses ``purpose`` (what asked for maps, in the words the user used) unless there is a decoder."""
        if not self.has_decoder:
            raise UsageError(f"{purpose}: this {self.kind} has no decoder, so it cannot map manipulated pixels (use a "
                             "localizer such as declip-l14-lama, see: clipforensics zoo, or a detector trained with "
                             "a decoder)")

    def require_head(self, purpose: str) -> None:
        """Refuses ``purpose`` unless there is a head (whose score it needs)."""
        if not self.has_head:
            raise UsageError(f"{purpose}: this {self.kind} has no head, so it has no score to explain (use a "
                             "detector, see: clipforensics zoo)")

    @property
    def fake_index(self) -> int:
        return self.labels.index("fake")

    @property
    def real_index(self) -> int:
        """The class an explanation's score ``z_fake - z_real`` weighs fake against: ``real``, else the first other."""
        return self.labels.index("real") if "real" in self.labels else next(
            index for index, label in enumerate(self.labels) if label != "fake")

    @property
    def map_size(self) -> int:
        """Side of the decoder's map: 16 pixels per token (256 for a 16 x 16 grid)."""
        return self.backbone.grid * PIXELS_PER_TOKEN

    def to_dict(self) -> dict:
        data: dict = {"kind": self.kind, "backbone": self.backbone.to_dict()}
        if self.has_head:
            data.update(head=self.head, labels=list(self.labels))
        if self.has_decoder:
            data.update(layer=self.layer, decoder=self.decoder)
        return {**data, "preprocessing": self.preprocessing.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        kind = data.get("kind", "detector")
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")
        return cls(
            backbone=BackboneConfig.from_dict(data["backbone"]),
            head=data["head"] if kind != "localizer" else None,
            decoder=data["decoder"] if kind != "detector" else None,
            layer=data.get("layer", 20),
            labels=tuple(data.get("labels", ("real", "fake"))),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
        )


@dataclass
class ModelOutput:
    logits: torch.Tensor | None
    """[B, classes] from the head; None without one."""
    maps: torch.Tensor | None
    """[B, 1, map, map] logits of "manipulated" per pixel; None when not asked for or without a decoder."""
    features: torch.Tensor | None
    """[B, width], L2-normalised: the points on the hypersphere the metric losses act on (with a head)."""


class ForensicsModel(nn.Module):
    """Vision tower, then a classifier head on the pooled class token and/or a decoder on block ``layer``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = config.backbone.build()
        if config.has_head:
            self.head = ClassifierHead(config.backbone.width, len(config.labels), config.head)
        if config.has_decoder:
            self.decoder = build_decoder(config.decoder, config.backbone.width)

    @property
    def has_head(self) -> bool:
        return self.config.has_head

    @property
    def has_decoder(self) -> bool:
        return self.config.has_decoder

    def forward_features(self, pixels: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor | None,
                                                                                   torch.Tensor | None]:
        """One pass through the backbone: the pooled feature (with a head) and, when ``maps`` are asked for
        (always without a head), the decoder's map logits. Blocks past ``layer`` run only for a head."""
        if maps:
            self.config.require_decoder("maps")
        if not (maps or not self.has_head):  # a model without a head scores by its map
            return self.backbone(pixels), None
        if not self.has_head:
            return None, self.decoder(self.backbone.tokens(pixels, self.config.layer))
        pooled, tokens = self.backbone.pooled_and_tokens(pixels, self.config.layer)
        return pooled, self.decoder(tokens)

    def forward_head(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the L2-normalised feature from the pooled feature (training slerps in between)."""
        return self.head(pooled)

    def forward(self, pixels: torch.Tensor, maps: bool = False) -> ModelOutput:
        pooled, map_logits = self.forward_features(pixels, maps)
        logits, features = self.forward_head(pooled) if pooled is not None else (None, None)
        return ModelOutput(logits, map_logits, features)

    def p_fake(self, output: ModelOutput) -> torch.Tensor:
        """[B] probability of fake: the head's softmax when there is a head, else the map's score."""
        if output.logits is not None:
            return output.logits.float().softmax(dim=1)[:, self.config.fake_index]
        return map_score(torch.sigmoid(output.maps.float()))
