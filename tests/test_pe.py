"""The Perception Encoder family: GenD's PE checkpoint gives GenD's outputs through the project's own PE-Core
implementation; its grid, rotary embedding, preprocessing, tuning, base weights and training."""

import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

import clipforensics
from clipforensics.errors import DownloadError
from clipforensics.hub.checkpoints import gend_filter, load_model, save_model
from clipforensics.hub.towers import read_tower_weights
from clipforensics.hub.zoo import ZOO
from clipforensics.models.backbones import BackboneConfig, infer_backbone_config, known_backbone
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.models.towers.pe import resample_positions, rope_embedding, rotate
from clipforensics.models.tuning import apply_tuning, merged_state_dict
from clipforensics.transforms import preprocess

from .conftest import assert_reproduces_gend
from .test_dinov3 import TINY_DINOV3

TINY_PE = BackboneConfig("tiny-random-pe", 64, 2, 256, 16, 64, family="pe", position_grid=6)
"""Width 64 (one head), a position table learnt on a 6 x 6 grid, run on 4 x 4 (64 px)."""


def _gend_pe(backbones):
    return backbones / "gend-pe"


def test_gend_pe_reproduces_gends_logits_and_p_fake(backbones):
    assert_reproduces_gend(backbones, "gend-pe")


def test_loading_gends_pe_folder_makes_no_network_call(backbones, monkeypatch):
    attempts = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: attempts.append(address))

    clipforensics.load(_gend_pe(backbones), precision="fp32")

    assert attempts == []


def test_the_pe_architecture_comes_from_the_tensors(backbones):
    state = gend_filter(load_file(_gend_pe(backbones) / "model.safetensors"))
    tower = {k[len("backbone.vision.") :]: v for k, v in state.items() if k.startswith("backbone.vision.")}

    config = infer_backbone_config(tower, name="vit_pe_core_large_patch14_336")

    assert config == BackboneConfig("vit_pe_core_large_patch14_336", 128, 2, 512, 14, 224, family="pe",
                                    position_grid=24)
    assert (config.heads, config.grid) == (2, 16)


def test_gends_pe_runs_at_its_native_336_px_grid_and_at_224_px(backbones):
    model = clipforensics.load(_gend_pe(backbones), precision="fp32").model
    pixels = torch.from_numpy(np.load(backbones / "input.npy"))
    native = F.interpolate(pixels, size=(336, 336), mode="bilinear")

    with torch.no_grad():
        at_336 = model.backbone.tokens(native, 1)
        at_224 = model.backbone.tokens(pixels, 1)
        pooled = model.backbone(native)

    assert at_336.shape == (4, 1 + 24 * 24, 128) and at_224.shape == (4, 1 + 16 * 16, 128)
    assert pooled.shape == (4, 128) and torch.isfinite(pooled).all()
    table = model.backbone.vision.pos_embed
    assert resample_positions(table, (24, 24)) is table
    assert resample_positions(table, (16, 16)).shape == (1, 1 + 16 * 16, 128)


def test_on_the_native_grid_the_rotary_angles_are_the_patch_positions_counted_from_one():
    embedding = rope_embedding((24, 24), reference=24, head_width=64)
    sin, cos = embedding.tensor_split(2, -1)
    bands = 1.0 / 10000 ** (torch.arange(16) / 16)
    row, column = 5, 17

    token = row * 24 + column
    torch.testing.assert_close(sin[token, 0:32:2], torch.sin((column + 1) * bands))
    torch.testing.assert_close(sin[token, 32:64:2], torch.sin((row + 1) * bands))
    torch.testing.assert_close(cos[token, 1:32:2], torch.cos((column + 1) * bands))


def test_a_smaller_grid_spreads_the_same_angles_over_fewer_patches():
    small, native = rope_embedding((16, 16), 24, 64), rope_embedding((24, 24), 24, 64)

    last_small, last_native = 16 * 16 - 1, 24 * 24 - 1
    torch.testing.assert_close(small[last_small], native[last_native])


def test_rotated_queries_and_keys_meet_by_their_offset_alone():
    embedding = rope_embedding((8, 8), 8, 64)
    q, k = torch.randn(64), torch.randn(64)

    def score(at_q: tuple[int, int], at_k: tuple[int, int]) -> torch.Tensor:
        rotated_q = rotate(q, embedding[at_q[0] * 8 + at_q[1]])
        rotated_k = rotate(k, embedding[at_k[0] * 8 + at_k[1]])
        return rotated_q @ rotated_k

    torch.testing.assert_close(score((1, 2), (3, 5)), score((4, 1), (6, 4)))
    assert not torch.allclose(score((1, 2), (3, 5)), score((1, 2), (5, 3)))


def test_the_zoo_names_gends_pe_detector():
    entry = ZOO["gend-pe-l"]

    assert (entry.repo_id, entry.files, entry.layout) == ("yermandy/GenD_PE_L", ("config.json", "model.safetensors"),
                                                           "gend-hf")


def test_layernorm_tuning_trains_gends_layernorms_of_pe():
    model = create_model(ModelConfig(TINY_PE))

    apply_tuning(model, "layernorm")

    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    norms = [f"blocks.{i}.{norm}" for i in range(2) for norm in ("norm1", "norm2")]
    norms += ["norm_pre", "norm", "attn_pool.norm"]  # GenD unfreezes every parameter whose name holds "norm"
    assert trained == {f"backbone.vision.{norm}.{p}" for norm in norms for p in ("weight", "bias")} | {
        "head.weight", "head.bias"}


def test_lora_on_pe_adapts_the_blocks_attention_and_saves_merged(tmp_path):
    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_PE))
    apply_tuning(model, "lora")
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if ".lora_A." in name}
    for parameter in model.parameters():
        if parameter.requires_grad:
            torch.nn.init.normal_(parameter, std=0.1)
    pixels = torch.randn(2, 3, 64, 64)

    loaded, _ = load_model(save_model(model.eval(), tmp_path / "m"))

    assert adapted == {f"backbone.vision.blocks.{i}.attn.{part}" for i in range(2) for part in ("qkv", "proj")}
    assert set(loaded.state_dict()) == set(merged_state_dict(model))
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixels).logits, model(pixels).logits)


def _timm_recipe(image: np.ndarray) -> torch.Tensor:
    """timm's eval transform for PE as GenD builds it: torchvision Resize(224, bicubic) on the PIL image,
    CenterCrop(224) (offsets rounded half to even), ToTensor, Normalize(0.5, 0.5)."""
    height, width = image.shape[:2]
    short, long = min(height, width), max(height, width)
    size = (224, int(224 * long / short)) if width <= height else (int(224 * long / short), 224)
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
    top, left = int(round((resized.shape[0] - 224) / 2.0)), int(round((resized.shape[1] - 224) / 2.0))
    crop = torch.from_numpy(resized[top : top + 224, left : left + 224].copy()).permute(2, 0, 1).float().div(255)
    return ((crop - 0.5) / 0.5)[None]


@pytest.mark.parametrize("shape", [(231, 224), (224, 227), (389, 171)])
@pytest.mark.parametrize("as_pil", [True, False])
def test_pe_preprocessing_is_timms_eval_transform(shape, as_pil):
    image = np.random.default_rng(5).integers(0, 256, (*shape, 3), dtype=np.uint8)
    prep = ModelConfig("vit_pe_core_large_patch14_336").preprocessing

    ours = preprocess([Image.fromarray(image) if as_pil else image], prep)

    assert ours.shape == (1, 3, 224, 224)
    torch.testing.assert_close(ours, _timm_recipe(image), atol=1e-6, rtol=0)


def test_base_weights_come_from_a_folder_of_timms_files_without_their_projection_head(tmp_path):
    torch.manual_seed(1)
    source = create_model(ModelConfig(TINY_PE)).backbone.vision.state_dict()
    save_file({**source, "head.weight": torch.randn(32, 64)}, tmp_path / "model.safetensors")

    model = create_model(ModelConfig(TINY_PE), tower=read_tower_weights(TINY_PE, tmp_path))

    assert all(torch.equal(model.backbone.vision.state_dict()[key], tensor) for key, tensor in source.items())


def test_pe_base_weights_from_the_hub_fail_offline_naming_timms_repository(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))

    with pytest.raises(DownloadError) as error:
        read_tower_weights(known_backbone("vit_pe_core_large_patch14_336"), "hub")

    assert "timm/vit_pe_core_large_patch14_336.fb" in str(error.value) and "model.weights" in str(error.value)


def test_the_known_pe_l_is_pe_core_large_run_at_gends_224_px():
    config = known_backbone("vit_pe_core_large_patch14_336")

    assert (config.width, config.layers, config.heads, config.patch_size) == (1024, 24, 16, 14)
    assert (config.image_size, config.grid, config.position_grid) == (224, 16, 24)


def _learns(config: ModelConfig, loss_of) -> list[float]:
    torch.manual_seed(0)
    model = create_model(config).train()
    apply_tuning(model, "layernorm")
    pixels, labels = torch.randn(8, 3, 64, 64), torch.tensor([0, 1] * 4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(10):
        loss = loss_of(model, pixels, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_a_tiny_pe_detector_learns():
    losses = _learns(ModelConfig(TINY_PE), lambda model, pixels, labels: F.cross_entropy(model(pixels).logits, labels))

    assert losses[-1] < losses[0]


@pytest.mark.parametrize("backbone", [TINY_PE, TINY_DINOV3], ids=["pe", "dinov3"])
def test_a_localizer_on_a_pe_or_dinov3_tower_trains(backbone):
    masks = torch.zeros(8, 1, 64, 64)
    masks[1::2, :, 16:48, 16:48] = 1

    def loss_of(model, pixels, _):
        return F.binary_cross_entropy_with_logits(model(pixels, maps=True).maps, masks)

    losses = _learns(ModelConfig(backbone, head=None, decoder="conv-4", layer=1), loss_of)

    assert losses[-1] < losses[0]
