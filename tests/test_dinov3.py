"""The DINOv3 family: GenD's DINOv3 checkpoint gives GenD's outputs; config, tuning, preprocessing, training, saving."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from clipforensics.hub.checkpoints import gend_filter, load_model, save_model
from clipforensics.hub.zoo import ZOO
from clipforensics.models.backbones import TINY_BACKBONE, BackboneConfig, infer_backbone_config
from clipforensics.hub.towers import read_tower_weights
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.models.tuning import apply_tuning
from clipforensics.transforms import IMAGENET_MEAN, IMAGENET_STD, preprocess

from .conftest import assert_reproduces_gend

TINY_DINOV3 = BackboneConfig("tiny-random-dinov3", 64, 2, 256, 16, 64, family="dinov3", registers=4)


def _gend_dinov3(backbones):
    return backbones / "gend-dinov3"


def test_gend_dinov3_reproduces_gends_logits_and_p_fake(backbones):
    assert_reproduces_gend(backbones, "gend-dinov3")


def test_the_dinov3_architecture_comes_from_the_tensors(backbones):
    state = gend_filter(load_file(_gend_dinov3(backbones) / "model.safetensors"))
    tower = {k[len("backbone.vision.") :]: v for k, v in state.items() if k.startswith("backbone.vision.")}

    config = infer_backbone_config(tower, name="gend")

    assert config == BackboneConfig("gend", 128, 2, 512, 16, 224, family="dinov3", registers=4)
    assert (config.heads, config.grid) == (2, 14)


def test_the_zoo_names_gends_dinov3_detector():
    entry = ZOO["gend-dinov3-l"]

    assert (entry.repo_id, entry.files, entry.layout) == (
        "yermandy/GenD_DINOv3_L", ("config.json", "model.safetensors"), "gend-hf")


def test_layernorm_tuning_trains_norm1_norm2_and_the_final_norm():
    model = create_model(ModelConfig(TINY_DINOV3))

    apply_tuning(model, "layernorm")

    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    norms = {f"backbone.vision.model.layer.{i}.{norm}.{p}" for i in range(2) for norm in ("norm1", "norm2")
             for p in ("weight", "bias")}
    assert trained == norms | {"backbone.vision.norm.weight", "backbone.vision.norm.bias", "head.weight", "head.bias"}


def _recipe(image: np.ndarray) -> torch.Tensor:
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    pixels = F.interpolate(pixels, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return (pixels - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


@pytest.mark.parametrize("as_pil", [True, False])
def test_dinov3_preprocessing_is_the_float_antialiased_resize_with_imagenet_statistics(as_pil):
    image = np.random.default_rng(3).integers(0, 256, (389, 171, 3), dtype=np.uint8)
    prep = ModelConfig("facebook/dinov3-vitl16-pretrain-lvd1689m").preprocessing

    ours = preprocess([Image.fromarray(image) if as_pil else image], prep)

    assert ours.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(ours.numpy(), _recipe(image).numpy(), atol=1e-5, rtol=0)


def test_a_tiny_dinov3_detector_learns():
    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_DINOV3)).train()
    apply_tuning(model, "layernorm")
    pixels, labels = torch.randn(8, 3, 64, 64), torch.tensor([0, 1] * 4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(pixels).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert losses[-1] < losses[0]


def test_a_dinov3_joint_model_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_DINOV3, decoder="linear", layer=0)).eval()
    pixels = torch.randn(2, 3, 64, 64)

    loaded, _ = load_model(save_model(model, tmp_path / "m"))

    assert loaded.config == model.config
    with torch.no_grad():
        before, after = model(pixels, maps=True), loaded(pixels, maps=True)
    assert torch.equal(before.logits, after.logits) and torch.equal(before.maps, after.maps)
    assert before.maps.shape == (2, 1, 64, 64)


def test_tokens_drop_the_register_tokens():
    model = create_model(ModelConfig(TINY_DINOV3)).eval()

    with torch.no_grad():
        pooled, tokens = model.backbone.pooled_and_tokens(torch.randn(1, 3, 64, 64), 1)
        alone = model.backbone.tokens(torch.randn(1, 3, 64, 64), 0)

    assert tokens.shape == (1, 1 + 4 * 4, 64) and alone.shape == tokens.shape and pooled.shape == (1, 64)


def test_a_clip_checkpoint_written_before_there_were_families_still_loads(tmp_path):
    model = create_model(ModelConfig(TINY_BACKBONE)).eval()
    folder = save_model(model, tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    for key in ("family", "registers"):
        del config["backbone"][key]
    (folder / "config.json").write_text(json.dumps(config))

    loaded, _ = load_model(folder)

    assert loaded.config.backbone.family == "clip" and loaded.config == model.config
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded(pixels).logits, model(pixels).logits)


def test_lora_on_dinov3_adapts_its_four_attention_projections():
    model = create_model(ModelConfig(TINY_DINOV3))

    apply_tuning(model, "lora")

    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if ".lora_A." in name}
    assert adapted == {f"backbone.vision.model.layer.{i}.attention.{part}" for i in range(2)
                       for part in ("q_proj", "k_proj", "v_proj", "o_proj")}


def test_base_weights_come_from_a_hugging_face_dinov3_folder(tmp_path):
    torch.manual_seed(2)
    source = create_model(ModelConfig(TINY_DINOV3)).backbone.vision
    source.save_pretrained(tmp_path)

    model = create_model(ModelConfig(TINY_DINOV3), tower=read_tower_weights(TINY_DINOV3, tmp_path))

    expected_state = source.state_dict()
    assert all(torch.equal(tensor, expected_state[key]) for key, tensor in model.backbone.vision.state_dict().items())
