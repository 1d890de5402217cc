"""Where each family's pretrained towers live and how their files' keys become the tower's (the base weights
training starts from, which ``hub.towers`` reads), and OpenAI's CLIP format (DeCLIP)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TowerWeights:
    """A family's pretrained towers: the hub repository of a known name, the files to fetch (the first one
    holds the tensors), what the files are, and their keys as the tower's (None: a tensor not of the tower)."""

    repo: Callable[[str], str]
    files: tuple[str, ...]
    what: str
    tower_key: Callable[[str], str | None]


def _clip_key(key: str) -> str | None:
    return key[len("vision_model.") :] if key.startswith("vision_model.") else None


def _dinov3_key(key: str) -> str:
    """transformers 4.56 saved DINOv3's blocks as ``layer.N``; transformers 5 keeps them under ``model.layer.N``."""
    return "model." + key if key.startswith("layer.") else key


def _pe_key(key: str) -> str | None:
    """timm's files carry PE-Core's projection to the text space as ``head``, which the tower leaves out."""
    return None if key.startswith("head.") else key


CLIP = TowerWeights(lambda name: name, ("config.json", "model.safetensors"), "a Hugging Face CLIP", _clip_key)
DINOV3 = TowerWeights(lambda name: name, ("config.json", "model.safetensors"),
                      "a Hugging Face DINOv3 ViT (a gated repository: accept its licence on the hub first)",
                      _dinov3_key)
PE = TowerWeights(lambda name: f"timm/{name}.fb", ("model.safetensors",), "timm's Perception Encoder files",
                  _pe_key)


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


