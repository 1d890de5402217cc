"""Backbones from the known names (CLIP ViTs, DINOv3 ViT-L), from tensors, from a local Hugging Face CLIP folder."""

import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from clipforensics.models.backbones import KNOWN_BACKBONES, BackboneConfig, infer_backbone_config, known_backbone
from clipforensics.errors import CheckpointError
from clipforensics.hub.towers import read_tower_weights
from clipforensics.models.factory import create_model
from clipforensics.models.localizer import declip_preprocessing
from clipforensics.models.towers.clip import clip_vision_config
from clipforensics.models.model import ForensicsModel, ModelConfig


@pytest.mark.parametrize(
    ("name", "width", "layers", "heads", "patch", "size"),
    [
        ("openai/clip-vit-base-patch16", 768, 12, 12, 16, 224),
        ("openai/clip-vit-base-patch32", 768, 12, 12, 32, 224),
        ("openai/clip-vit-large-patch14", 1024, 24, 16, 14, 224),
        ("openai/clip-vit-large-patch14-336", 1024, 24, 16, 14, 336),
    ],
)
def test_the_four_openai_towers_are_known(name, width, layers, heads, patch, size):
    config = known_backbone(name)

    assert (config.width, config.layers, config.heads, config.patch_size, config.image_size) == (
        width, layers, heads, patch, size,
    )


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="openai/clip-vit-large-patch14"):
        known_backbone("openai/clip-vit-huge-patch14")


@pytest.mark.parametrize("name", list(KNOWN_BACKBONES))
def test_config_inferred_from_tensors_equals_the_known_config(name):
    with torch.device("meta"):
        model = ForensicsModel(ModelConfig(known_backbone(name)))

    inferred = infer_backbone_config(model.backbone.vision.state_dict(), name=name)

    assert inferred == known_backbone(name)


def test_inference_refuses_tensors_that_are_not_a_clip_tower():
    with pytest.raises(CheckpointError, match="not a CLIP vision tower"):
        infer_backbone_config({"conv.weight": torch.zeros(1)})


def test_weights_come_from_a_local_hugging_face_clip_folder(tmp_path):
    tower = BackboneConfig("local-tiny", 64, 2, 256, 16, 64)
    clip = CLIPModel(CLIPConfig(
        vision_config=clip_vision_config(tower).to_dict(),
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=16,
    ))
    clip.save_pretrained(tmp_path)

    detector = create_model(ModelConfig(tower), tower=read_tower_weights(tower, tmp_path))

    expected = clip.vision_model.state_dict()
    actual = detector.backbone.vision.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    assert detector.config.preprocessing.size == 64


def test_a_folder_without_clip_weights_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="neither model.safetensors nor pytorch_model.bin"):
        read_tower_weights(BackboneConfig("x", 64, 2, 256, 16, 64), tmp_path)


@pytest.mark.parametrize("name", ["openai/clip-vit-large-patch14", "facebook/dinov3-vitl16-pretrain-lvd1689m",
                                  "vit_pe_core_large_patch14_336"])
def test_a_localizer_takes_its_familys_localizer_pipeline_declips_on_clip(name):
    backbone = known_backbone(name)
    localizer = ModelConfig(backbone, head=None, decoder="linear", layer=1).preprocessing

    assert localizer == backbone.preprocessing(localizer=True)
    assert (localizer == declip_preprocessing(backbone.image_size)) == (backbone.family == "clip")
    assert (localizer == backbone.preprocessing()) == (backbone.family != "clip")
