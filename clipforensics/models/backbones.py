"""ViT vision towers: their configs as plain data, the families they belong to, the known names, and
configs read off a tower's tensors.

Three families share one contract (see ``towers.base.Tower``): ``clip`` (transformers' ``CLIPVisionModel``,
whose ``pooler_output`` is the detector's feature, as in the papers' code), ``dinov3`` (transformers'
``DINOv3ViTModel``; the class token after the final norm, as GenD takes it) and ``pe`` (Meta's Perception
Encoder, this project's own implementation of timm's ``Eva`` for PE-Core; the attention-pooled output, as
GenD takes it). What differs between them is recorded once, in ``FAMILIES``, which names each family's tower
class by its module under ``towers`` (imported when a tower is built): the towers read their config from here,
so this module does not import them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import CheckpointError
from ..transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from . import pretrained
from .localizer import declip_preprocessing

HEAD_WIDTH = 64  # every OpenAI CLIP ViT, DINOv3 ViT-S/B/L and PE-Core T/S/B/L use 64-dimensional attention heads
GEND_IMAGE_SIZE = 224
"""GenD's input size for DINOv3 (which has no learnt position table) and PE (whose table it resamples): a
choice of the run, not a property of the tensors."""
PE_MEAN = PE_STD = (0.5, 0.5, 0.5)

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BackboneConfig:
    """Architecture of a ViT vision tower, as plain data. ``family``: clip | dinov3 | pe; ``registers``: the
    register tokens a DINOv3 tower puts between its class token and its patch tokens; ``position_grid``: for
    PE, the grid its position table and rotary embedding were learnt on (24 for L/14 at 336 px), which the
    run's grid (``image_size // patch_size``) is resampled from."""

    name: str
    width: int
    layers: int
    mlp_width: int
    patch_size: int
    image_size: int
    family: str = "clip"
    registers: int = 0
    position_grid: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"backbone family must be one of {', '.join(FAMILIES)}, not {self.family!r}")
        if self.family == "pe" and self.position_grid <= 0:
            object.__setattr__(self, "position_grid", self.grid)

    @property
    def layernorms(self) -> tuple[str, ...]:
        """Names of the LayerNorm modules LN-tuning trains."""
        return FAMILIES[self.family].layernorms

    @property
    def linear_norms(self) -> tuple[str, ...]:
        """Names of the LayerNorm modules whose output only linears read (each block's two)."""
        return FAMILIES[self.family].linear_norms

    @property
    def lora_targets(self) -> tuple[str, ...]:
        """The attention projections LoRA adapts (module-name suffixes)."""
        return FAMILIES[self.family].lora_targets

    def preprocessing(self, localizer: bool = False) -> Preprocessing:
        """The input pipeline this family's pretrained towers expect; with ``localizer``, the one a model
        without a head (a localizer) takes on this family (DeCLIP's on CLIP)."""
        family = FAMILIES[self.family]
        return (family.localizer_preprocessing if localizer else family.preprocessing)(self.image_size)

    def build(self) -> nn.Module:
        """The backbone module with this architecture (random weights)."""
        module, _, name = FAMILIES[self.family].tower.rpartition(".")
        return getattr(importlib.import_module(f"{__package__}.towers.{module}"), name)(self)

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


def infer_backbone_config(state_dict: StateDict, name: str = "inferred") -> BackboneConfig:
    """Reads the family and the architecture off a vision tower's tensors (keys relative to the tower)."""
    for family in FAMILIES.values():
        if family.marker in state_dict:
            return family.infer(state_dict, name)
    markers = ", ".join(family.marker for family in FAMILIES.values())
    raise CheckpointError(f"not a CLIP vision tower, nor a DINOv3 or Perception Encoder one: none of the tensors "
                          f"{markers} is present")


def _blocks(state_dict: StateDict, prefix: str) -> int:
    return 1 + max(int(key[len(prefix) :].split(".")[0]) for key in state_dict if key.startswith(prefix))


def _infer_clip(state_dict: StateDict, name: str) -> BackboneConfig:
    try:
        patch = state_dict["embeddings.patch_embedding.weight"]
        positions = state_dict["embeddings.position_embedding.weight"].shape[0]
        mlp_width = state_dict["encoder.layers.0.mlp.fc1.weight"].shape[0]
    except KeyError as missing:
        raise CheckpointError(f"not a CLIP vision tower: tensor {missing} is absent") from None
    width, _, patch_size, _ = patch.shape
    grid = _square_grid(positions, "position embedding")
    return BackboneConfig(name, width, _blocks(state_dict, "encoder.layers."), mlp_width, patch_size, grid * patch_size)


def _infer_dinov3(state_dict: StateDict, name: str) -> BackboneConfig:
    if any(".mlp.gate_proj." in key for key in state_dict):
        raise CheckpointError("this DINOv3 tower has a gated MLP (ViT-S+, H+ or 7B); only ViT-S/B/L towers are "
                              "supported")
    try:
        patch = state_dict["embeddings.patch_embeddings.weight"]
        registers = state_dict["embeddings.register_tokens"].shape[1]
        mlp_width = state_dict["model.layer.0.mlp.up_proj.weight"].shape[0]
    except KeyError as missing:
        raise CheckpointError(f"not a DINOv3 vision tower: tensor {missing} is absent") from None
    width, _, patch_size, _ = patch.shape
    return BackboneConfig(name, width, _blocks(state_dict, "model.layer."), mlp_width, patch_size, GEND_IMAGE_SIZE,
                          "dinov3", registers)


def _infer_pe(state_dict: StateDict, name: str) -> BackboneConfig:
    if "reg_token" in state_dict or any(".gamma_1" in key for key in state_dict):
        raise CheckpointError("this Eva tower has register tokens or layer scales: only PE-Core towers are supported")
    try:
        patch = state_dict["patch_embed.proj.weight"]
        positions = state_dict["pos_embed"].shape[1]
        mlp_width = state_dict["blocks.0.mlp.fc1.weight"].shape[0]
        state_dict["attn_pool.latent"]
    except KeyError as missing:
        raise CheckpointError(f"not a Perception Encoder (PE-Core) tower: tensor {missing} is absent") from None
    width, _, patch_size, _ = patch.shape
    if width % HEAD_WIDTH:
        raise CheckpointError(f"width {width} is not a multiple of {HEAD_WIDTH}: only PE-Core T/S/B/L are supported")
    return BackboneConfig(name, width, _blocks(state_dict, "blocks."), mlp_width, patch_size, GEND_IMAGE_SIZE, "pe",
                          position_grid=_square_grid(positions, "pos_embed"))


def _square_grid(positions: int, what: str) -> int:
    grid = round((positions - 1) ** 0.5)
    if grid * grid != positions - 1:
        raise CheckpointError(f"{what} of {positions} rows is not 1 + a square grid")
    return grid


def _dinov3_preprocessing(size: int) -> Preprocessing:
    """transformers' ``DINOv3ViTImageProcessorFast``: to [0, 1], bilinear antialiased resize, ImageNet mean/std."""
    return Preprocessing(size=size, mode="resize-float", interpolation="bilinear", mean=IMAGENET_MEAN,
                         std=IMAGENET_STD)


def _pe_preprocessing(size: int) -> Preprocessing:
    """timm's eval transform for PE (crop_pct 1): shorter side to ``size`` (PIL bicubic), torchvision's centre
    crop (offsets rounded), mean and std 0.5."""
    return Preprocessing(size=size, mode="crop", interpolation="bicubic", mean=PE_MEAN, std=PE_STD,
                         crop_offset="round")


@dataclass(frozen=True)
class BackboneFamily:
    """What differs between families: the tower (``module.Class`` under ``towers``), the LayerNorms LN-tuning
    trains (GenD's choice for each) and those only linears read, the attention projections LoRA adapts, the input
    pipeline of a detector and of a localizer, where the pretrained towers live, and how a tower's tensors reveal
    the family (``marker``) and its architecture (``infer``)."""

    tower: str
    layernorms: tuple[str, ...]
    linear_norms: tuple[str, ...]
    lora_targets: tuple[str, ...]
    preprocessing: Callable[[int], Preprocessing]
    localizer_preprocessing: Callable[[int], Preprocessing]
    weights: pretrained.TowerWeights
    marker: str
    infer: Callable[[StateDict, str], BackboneConfig]


FAMILIES: dict[str, BackboneFamily] = {
    "clip": BackboneFamily("clip.ClipBackbone", ("pre_layrnorm", "layer_norm1", "layer_norm2", "post_layernorm"),
                           ("layer_norm1", "layer_norm2"), ("q_proj", "k_proj", "v_proj", "out_proj"),
                           lambda size: Preprocessing(size=size), declip_preprocessing, pretrained.CLIP,
                           "embeddings.patch_embedding.weight", _infer_clip),
    "dinov3": BackboneFamily("dinov3.Dinov3Backbone", ("norm1", "norm2", "norm"), ("norm1", "norm2"),
                             ("q_proj", "k_proj", "v_proj", "o_proj"), _dinov3_preprocessing, _dinov3_preprocessing,
                             pretrained.DINOV3, "embeddings.patch_embeddings.weight", _infer_dinov3),
    "pe": BackboneFamily("pe.PeBackbone", ("norm_pre", "norm1", "norm2", "norm"), ("norm1", "norm2"),
                         ("attn.qkv", "attn.proj"), _pe_preprocessing, _pe_preprocessing, pretrained.PE,
                         "patch_embed.proj.weight", _infer_pe),
}


def _dinov3(size: str, width: int, layers: int) -> BackboneConfig:
    return BackboneConfig(f"facebook/dinov3-vit{size}16-pretrain-lvd1689m", width, layers, 4 * width, 16,
                          GEND_IMAGE_SIZE, "dinov3", registers=4)


def _pe(name: str, width: int, layers: int, patch_size: int, native: int) -> BackboneConfig:
    return BackboneConfig(name, width, layers, 4 * width, patch_size, GEND_IMAGE_SIZE, "pe",
                          position_grid=native // patch_size)


KNOWN_BACKBONES: dict[str, BackboneConfig] = {
    config.name: config
    for config in (
        BackboneConfig("openai/clip-vit-base-patch16", 768, 12, 3072, 16, 224),
        BackboneConfig("openai/clip-vit-base-patch32", 768, 12, 3072, 32, 224),
        BackboneConfig("openai/clip-vit-large-patch14", 1024, 24, 4096, 14, 224),
        BackboneConfig("openai/clip-vit-large-patch14-336", 1024, 24, 4096, 14, 336),
        _dinov3("s", 384, 12),
        _dinov3("b", 768, 12),
        _dinov3("l", 1024, 24),
        _pe("vit_pe_core_tiny_patch16_384", 192, 12, 16, 384),
        _pe("vit_pe_core_small_patch16_384", 384, 12, 16, 384),
        _pe("vit_pe_core_base_patch16_224", 768, 12, 16, 224),
        _pe("vit_pe_core_large_patch14_336", 1024, 24, 14, 336),
    )
}

TINY_BACKBONE = BackboneConfig("tiny-random-clip", 64, 2, 256, 16, 224)
"""Random-weight tower for tests and the offline demo (2 layers, width 64)."""


def known_backbone(name: str) -> BackboneConfig:
    try:
        return KNOWN_BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(KNOWN_BACKBONES)}") from None
