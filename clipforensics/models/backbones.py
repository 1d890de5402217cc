"""ViT vision towers: known configs, configs inferred from tensors, weights from a hub or a folder.

Two families share one contract (``width``, ``grid``, ``forward``, ``tokens``, ``pooled_and_tokens``):
``clip``, transformers' ``CLIPVisionModel``, whose ``pooler_output`` (the post-LayerNorm CLS token, before
CLIP's visual projection) is the detector's feature, as in the papers' code; and ``dinov3``, transformers'
``DINOv3ViTModel``, whose class token after the final norm is GenD's feature. What differs between them
is recorded once, in ``FAMILIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, DINOv3ViTConfig, DINOv3ViTModel, PretrainedConfig

from ..errors import CheckpointError
from ..transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

HEAD_WIDTH = 64  # every OpenAI CLIP ViT and DINOv3 ViT-S/B/L use 64-dimensional attention heads
DINOV3_IMAGE_SIZE = 224
"""DINOv3 has no learnt position table (RoPE): its input size is GenD's, not a property of the tensors."""

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BackboneConfig:
    """Architecture of a ViT vision tower, as plain data. ``family``: clip | dinov3; ``registers``: the
    register tokens a DINOv3 tower puts between its class token and its patch tokens."""

    name: str
    width: int
    layers: int
    mlp_width: int
    patch_size: int
    image_size: int
    family: str = "clip"
    registers: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"backbone family must be one of {', '.join(FAMILIES)}, not {self.family!r}")

    @property
    def layernorms(self) -> tuple[str, ...]:
        """Names of the LayerNorm modules LN-tuning trains."""
        return FAMILIES[self.family].layernorms

    def preprocessing(self) -> Preprocessing:
        """The input pipeline this family's pretrained towers expect."""
        return FAMILIES[self.family].preprocessing(self.image_size)

    def build(self) -> nn.Module:
        """The backbone module with this architecture (random weights)."""
        return FAMILIES[self.family].module(self)

    @property
    def heads(self) -> int:
        return self.width // HEAD_WIDTH

    @property
    def grid(self) -> int:
        """Patch tokens per side."""
        return self.image_size // self.patch_size

    def check_layer(self, layer: int) -> None:
        """A block a decoder can read: 0-based, within the tower."""
        if not 0 <= layer < self.layers:
            raise ValueError(f"layer must be in 0..{self.layers - 1} for this backbone, not {layer}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BackboneConfig:
        """From ``to_dict``'s output; configs written before there were families are CLIP's."""
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def to_transformers(self) -> PretrainedConfig:
        return FAMILIES[self.family].transformers_config(self)


def _clip_transformers_config(config: BackboneConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=config.width,
        intermediate_size=config.mlp_width,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        patch_size=config.patch_size,
        image_size=config.image_size,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        attn_implementation="sdpa",
    )


def _dinov3_transformers_config(config: BackboneConfig) -> DINOv3ViTConfig:
    """DINOv3 ViT-S/B/L's settings (GELU MLP, no key bias, layer scale, RoPE theta 100)."""
    return DINOv3ViTConfig(
        hidden_size=config.width,
        intermediate_size=config.mlp_width,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        patch_size=config.patch_size,
        image_size=config.image_size,
        num_register_tokens=config.registers,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        rope_theta=100.0,
        key_bias=False,
        use_gated_mlp=False,
        attn_implementation="sdpa",
    )


def infer_backbone_config(state_dict: StateDict, name: str = "inferred") -> BackboneConfig:
    """Reads the family and the architecture off a vision tower's tensors (keys relative to the tower)."""
    for family in FAMILIES.values():
        if family.marker in state_dict:
            return family.infer(state_dict, name)
    markers = ", ".join(family.marker for family in FAMILIES.values())
    raise CheckpointError(f"not a CLIP vision tower, nor a DINOv3 one: none of the tensors {markers} is present")


def _infer_clip(state_dict: StateDict, name: str) -> BackboneConfig:
    try:
        patch = state_dict["embeddings.patch_embedding.weight"]
        positions = state_dict["embeddings.position_embedding.weight"].shape[0]
        mlp_width = state_dict["encoder.layers.0.mlp.fc1.weight"].shape[0]
    except KeyError as missing:
        raise CheckpointError(f"not a CLIP vision tower: tensor {missing} is absent") from None
    layers = 1 + max(int(key.split(".")[2]) for key in state_dict if key.startswith("encoder.layers."))
    grid = round((positions - 1) ** 0.5)
    if grid * grid != positions - 1:
        raise CheckpointError(f"position embedding of {positions} rows is not 1 + a square grid")
    width, _, patch_size, _ = patch.shape
    return BackboneConfig(name, width, layers, mlp_width, patch_size, grid * patch_size)


def _infer_dinov3(state_dict: StateDict, name: str) -> BackboneConfig:
    if any(".mlp.gate_proj." in key for key in state_dict):
        raise CheckpointError("this DINOv3 tower has a gated MLP (ViT-H+ or 7B); only ViT-S/B/L towers are supported")
    try:
        patch = state_dict["embeddings.patch_embeddings.weight"]
        registers = state_dict["embeddings.register_tokens"].shape[1]
        mlp_width = state_dict["model.layer.0.mlp.up_proj.weight"].shape[0]
    except KeyError as missing:
        raise CheckpointError(f"not a DINOv3 vision tower: tensor {missing} is absent") from None
    layers = 1 + max(int(key.split(".")[2]) for key in state_dict if key.startswith("model.layer."))
    width, _, patch_size, _ = patch.shape
    return BackboneConfig(name, width, layers, mlp_width, patch_size, DINOV3_IMAGE_SIZE, "dinov3", registers)


class Tower(nn.Module):
    """What every backbone exposes beside its features: its config, ``width`` and ``grid``; ``vision`` is
    the library's model, whose tensors checkpoints name ``backbone.vision.*``."""

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


class ClipBackbone(Tower):
    """CLIP vision tower: pooled or per-block features."""

    def __init__(self, config: BackboneConfig):
        super().__init__(config, CLIPVisionModel(config.to_transformers()))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled feature: the post-LayerNorm CLS token, [B, width]."""
        return self.vision(pixel_values=pixels).pooler_output

    def tokens(self, pixels: torch.Tensor, layer: int) -> torch.Tensor:
        """Output of transformer block ``layer`` (0-based, before any final LayerNorm), class token
        first, [B, 1 + grid^2, width]; the blocks after it are not run."""
        self.config.check_layer(layer)
        hidden = self.vision.pre_layrnorm(self.vision.embeddings(pixels))
        for block in self.vision.encoder.layers[: layer + 1]:
            hidden = block(hidden, None)
        return hidden

    def pooled_and_tokens(self, pixels: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled feature and block ``layer``'s tokens from one pass through every block."""
        tapped = self.tokens(pixels, layer)
        hidden = tapped
        for block in self.vision.encoder.layers[layer + 1 :]:
            hidden = block(hidden, None)
        return self.vision.post_layernorm(hidden[:, 0]), tapped


class Dinov3Backbone(Tower):
    """DINOv3 ViT: pooled or per-block features; the register tokens are dropped from the per-block tokens,
    so that they read as a CLIP tower's (class token, then the grid)."""

    def __init__(self, config: BackboneConfig):
        super().__init__(config, DINOv3ViTModel(config.to_transformers()))

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


def _dinov3_preprocessing(size: int) -> Preprocessing:
    """transformers' ``DINOv3ViTImageProcessorFast``: to [0, 1], bilinear antialiased resize, ImageNet mean/std."""
    return Preprocessing(size=size, mode="resize-float", interpolation="bilinear", mean=IMAGENET_MEAN,
                         std=IMAGENET_STD)


@dataclass(frozen=True)
class BackboneFamily:
    """What differs between families: the module, its transformers config, the LayerNorms LN-tuning trains,
    the input pipeline, and how a tower's tensors reveal it (``marker``) and its architecture (``infer``)."""

    module: Callable[[BackboneConfig], nn.Module]
    transformers_config: Callable[[BackboneConfig], PretrainedConfig]
    layernorms: tuple[str, ...]
    preprocessing: Callable[[int], Preprocessing]
    marker: str
    infer: Callable[[StateDict, str], BackboneConfig]


FAMILIES: dict[str, BackboneFamily] = {
    "clip": BackboneFamily(ClipBackbone, _clip_transformers_config,
                           ("pre_layrnorm", "layer_norm1", "layer_norm2", "post_layernorm"),
                           lambda size: Preprocessing(size=size), "embeddings.patch_embedding.weight", _infer_clip),
    "dinov3": BackboneFamily(Dinov3Backbone, _dinov3_transformers_config, ("norm1", "norm2", "norm"),
                             _dinov3_preprocessing, "embeddings.patch_embeddings.weight", _infer_dinov3),
}


KNOWN_BACKBONES: dict[str, BackboneConfig] = {
    config.name: config
    for config in (
        BackboneConfig("openai/clip-vit-base-patch16", 768, 12, 3072, 16, 224),
        BackboneConfig("openai/clip-vit-base-patch32", 768, 12, 3072, 32, 224),
        BackboneConfig("openai/clip-vit-large-patch14", 1024, 24, 4096, 14, 224),
        BackboneConfig("openai/clip-vit-large-patch14-336", 1024, 24, 4096, 14, 336),
        BackboneConfig("facebook/dinov3-vitl16-pretrain-lvd1689m", 1024, 24, 4096, 16, 224, "dinov3", 4),
    )
}

TINY_BACKBONE = BackboneConfig("tiny-random-clip", 64, 2, 256, 16, 224)
"""Random-weight tower for tests and the offline demo (2 layers, width 64)."""


def known_backbone(name: str) -> BackboneConfig:
    try:
        return KNOWN_BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(KNOWN_BACKBONES)}") from None


_OPENAI_NAMES = {
    "class_embedding": "embeddings.class_embedding",
    "positional_embedding": "embeddings.position_embedding.weight",
    "conv1.weight": "embeddings.patch_embedding.weight",
}
_OPENAI_PARTS = {
    "ln_pre.": "pre_layrnorm.",
    "ln_post.": "post_layernorm.",
    "transformer.resblocks.": "encoder.layers.",
    ".attn.out_proj.": ".self_attn.out_proj.",
    ".ln_1.": ".layer_norm1.",
    ".ln_2.": ".layer_norm2.",
    ".mlp.c_fc.": ".mlp.fc1.",
    ".mlp.c_proj.": ".mlp.fc2.",
}


def openai_visual_to_tower(state: dict[str, torch.Tensor], prefix: str = "visual.") -> dict[str, torch.Tensor]:
    """An OpenAI-format CLIP's ``visual.*`` tensors as the tower's keys: ``in_proj`` split into
    q, k, v; ``conv1`` to the patch embedding; ``ln_pre``/``ln_post``/``ln_1``/``ln_2`` to the
    LayerNorms; ``c_fc``/``c_proj`` to the MLP. CLIP's projection ``proj`` is not part of the tower."""
    tower: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if not key.startswith(prefix) or key == prefix + "proj":
            continue
        name = _OPENAI_NAMES.get(key[len(prefix) :], key[len(prefix) :])
        for old, new in _OPENAI_PARTS.items():
            name = name.replace(old, new)
        if ".attn.in_proj_" in name:
            kind = name.rsplit("_", 1)[-1]  # weight | bias
            block = name.split(".attn.")[0]
            for part, chunk in zip(("q", "k", "v"), tensor.chunk(3, dim=0)):
                tower[f"{block}.self_attn.{part}_proj.{kind}"] = chunk.clone()
        else:
            tower[name] = tensor
    return tower


CLIP_FOLDER_INSTEAD = ("give its folder as the CLIP weights (in a training config: model.weights, e.g. --set "
                       "model.weights=path/to/folder), or null to start from random weights")


def read_clip_vision_weights(folder: str | Path, repo_id: str) -> dict[str, torch.Tensor]:
    """The ``vision_model.*`` tensors of a Hugging Face CLIP, prefix removed: from a local folder
    (``model.safetensors`` or ``pytorch_model.bin``), or ``"hub"`` to fetch ``repo_id``."""
    from ..hub.files import read_safetensors, torch_load
    from ..hub.zoo import hub_snapshot

    folder = hub_snapshot(repo_id, ("config.json", "model.safetensors"), CLIP_FOLDER_INSTEAD) \
        if str(folder) == "hub" else Path(folder)
    if (folder / "model.safetensors").is_file():
        state = read_safetensors(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        state = torch_load(folder / "pytorch_model.bin")
    else:
        raise CheckpointError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    prefix = "vision_model."
    tower = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    if not tower:
        raise CheckpointError(f"{folder} holds no 'vision_model.*' tensors: not a Hugging Face CLIP")
    return tower
