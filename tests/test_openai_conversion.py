"""OpenAI-format CLIP weights (as DeCLIP saves them) convert exactly to the project's tower."""

import torch

from clipforensics.models.backbones import BackboneConfig
from clipforensics.models.pretrained import openai_visual_to_tower
from clipforensics.models.towers.clip import ClipBackbone
from clipforensics.models.factory import load_strict

CONFIG = BackboneConfig("openai-format-tiny", 64, 2, 256, 16, 64)


def _openai_format(tower: ClipBackbone) -> dict[str, torch.Tensor]:
    """The tower's weights written the way OpenAI's CLIP names them (the inverse mapping, spelled out)."""
    hf = tower.vision.state_dict()
    state = {
        "visual.class_embedding": hf["embeddings.class_embedding"],
        "visual.positional_embedding": hf["embeddings.position_embedding.weight"],
        "visual.conv1.weight": hf["embeddings.patch_embedding.weight"],
        "visual.proj": torch.randn(CONFIG.width, 32),
        "transformer.resblocks.0.attn.in_proj_weight": torch.randn(3, 3),  # text tower: ignored
    }
    for ours, theirs in (("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")):
        for kind in ("weight", "bias"):
            state[f"visual.{theirs}.{kind}"] = hf[f"{ours}.{kind}"]
    for n in range(CONFIG.layers):
        ours, theirs = f"encoder.layers.{n}", f"visual.transformer.resblocks.{n}"
        for kind in ("weight", "bias"):
            state[f"{theirs}.attn.in_proj_{kind}"] = torch.cat(
                [hf[f"{ours}.self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")])
            state[f"{theirs}.attn.out_proj.{kind}"] = hf[f"{ours}.self_attn.out_proj.{kind}"]
            state[f"{theirs}.ln_1.{kind}"] = hf[f"{ours}.layer_norm1.{kind}"]
            state[f"{theirs}.ln_2.{kind}"] = hf[f"{ours}.layer_norm2.{kind}"]
            state[f"{theirs}.mlp.c_fc.{kind}"] = hf[f"{ours}.mlp.fc1.{kind}"]
            state[f"{theirs}.mlp.c_proj.{kind}"] = hf[f"{ours}.mlp.fc2.{kind}"]
    return state


def test_every_tower_tensor_comes_back_exactly():
    torch.manual_seed(0)
    original = ClipBackbone(CONFIG)

    converted = openai_visual_to_tower(_openai_format(original))

    expected = original.vision.state_dict()
    assert converted.keys() == expected.keys()
    assert all(torch.equal(converted[k], expected[k]) for k in expected)


def test_a_tower_loaded_from_openai_weights_computes_the_same_features():
    torch.manual_seed(1)
    original = ClipBackbone(CONFIG).eval()
    fresh = ClipBackbone(CONFIG).eval()

    load_strict(fresh.vision, openai_visual_to_tower(_openai_format(original)), "the tower")

    pixels = torch.randn(2, 3, 64, 64)
    assert torch.equal(fresh(pixels), original(pixels))
