"""Each tuning mode trains exactly its parameters; counts match the paper's 102,400 LayerNorm weights on ViT-L/14."""

import pytest
import torch

from clipforensics.models.backbones import TINY_BACKBONE, known_backbone
from clipforensics.models.model import ForensicsModel, ModelConfig
from clipforensics.models.tuning import LoraSettings, apply_tuning, count_parameters


def _vit_l14_detector() -> ForensicsModel:
    with torch.device("meta"):
        return ForensicsModel(ModelConfig(known_backbone("openai/clip-vit-large-patch14")))


HEAD_L14 = 1024 * 2 + 2


def test_layernorm_tuning_on_vit_l14_trains_102400_weights_plus_the_head():
    model = _vit_l14_detector()

    counts = apply_tuning(model, "layernorm")

    assert counts.trainable == 102_400 + HEAD_L14
    assert 303_000_000 < counts.total < 304_500_000


def test_layernorm_tuning_selects_every_layernorm_and_nothing_else():
    model = ForensicsModel(ModelConfig(TINY_BACKBONE))

    apply_tuning(model, "layernorm")

    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    layernorms = {
        name for name, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)
        for name in (f"{name}.weight", f"{name}.bias")
    }
    assert trained == layernorms | {"head.weight", "head.bias"}
    assert len(layernorms) == 2 * (2 * TINY_BACKBONE.layers + 2)


def test_linear_probe_trains_only_the_head():
    counts = apply_tuning(_vit_l14_detector(), "linear-probe")

    assert counts.trainable == HEAD_L14


def test_full_tuning_trains_everything():
    counts = apply_tuning(_vit_l14_detector(), "full")

    assert counts.trainable == counts.total


def test_lora_trains_the_adapters_and_the_head():
    model = ForensicsModel(ModelConfig(TINY_BACKBONE))
    settings = LoraSettings(rank=4)

    counts = apply_tuning(model, "lora", settings)

    width, layers = TINY_BACKBONE.width, TINY_BACKBONE.layers
    adapters = layers * 4 * settings.rank * (width + width)  # q, k, v and out projections
    assert counts.trainable == adapters + width * 2 + 2
    assert counts.total == count_parameters(ForensicsModel(ModelConfig(TINY_BACKBONE))).total + adapters


def test_an_unknown_mode_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="layernorm.*lora.*linear-probe.*full"):
        apply_tuning(ForensicsModel(ModelConfig(TINY_BACKBONE)), "bitfit")


def test_counts_read_as_a_sentence():
    assert str(apply_tuning(_vit_l14_detector(), "layernorm")).startswith("104,450 trainable of ")
