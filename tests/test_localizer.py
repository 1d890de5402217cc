"""DeCLIP localizer: the authors' checkpoint reproduces their maps, the backbone stops at the tapped block,
decoders give 16 pixels per token, the joint model's map is the localizer's, and saving round-trips."""

import numpy as np
import pytest
import torch
from PIL import Image

import clipforensics
from clipforensics.models.backbones import TINY_BACKBONE, BackboneConfig
from clipforensics.hub.checkpoints import load_model, save_model
from clipforensics.models.factory import create_model
from clipforensics.models.localizer import DecoderSpec
from clipforensics.models.model import ModelConfig

from .conftest import expected

TINY_P14 = BackboneConfig("tiny-p14", width=64, layers=3, mlp_width=256, patch_size=14, image_size=224)


@pytest.fixture(scope="module")
def declip(reference):
    return clipforensics.load(reference / "declip-conv-4.pth", device="cpu", precision="fp32", batch_size=4)


def test_the_declip_checkpoint_reproduces_the_authors_maps_from_their_inputs(declip, reference):
    inputs = torch.from_numpy(np.load(reference / "declip-conv-4.input.npy"))
    maps = np.load(reference / "declip-conv-4.maps.npy")

    probabilities = torch.sigmoid(declip.predict_tensor(inputs))[:, 0].numpy()

    assert declip.config.kind == "localizer" and not declip.has_head and declip.has_decoder
    assert (declip.config.layer, declip.config.decoder) == (2, "conv-4")
    np.testing.assert_allclose(probabilities, maps[: len(inputs)], atol=1e-4)


def test_the_declip_checkpoint_reproduces_maps_and_image_scores_from_the_image_files(declip, reference,
                                                                                      sample_faces):
    truth = expected(reference, "declip-conv-4.expected.json")
    maps = np.load(reference / "declip-conv-4.maps.npy")

    results = declip.predict([sample_faces / name for name in truth["files"]])

    assert all(r.ok and r.map.shape == (256, 256) for r in results)  # the sample faces are 256 x 256
    np.testing.assert_allclose(np.stack([r.map for r in results]), maps, atol=1e-4)
    np.testing.assert_allclose([r.p_fake for r in results], truth["image_score"], atol=1e-4)


def test_the_backbone_stops_at_the_tapped_block_and_gives_its_output():
    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_P14, head=None, decoder="linear", layer=1)).eval()
    pixels = torch.randn(2, 3, 224, 224)
    ran = []
    for number, block in enumerate(model.backbone.vision.encoder.layers):
        block.register_forward_hook(lambda *_, number=number: ran.append(number))

    with torch.no_grad():
        tokens = model.backbone.tokens(pixels, 1)
        model(pixels)
        reference = model.backbone.vision(pixel_values=pixels, output_hidden_states=True).hidden_states[2]

    assert ran[:4] == [0, 1, 0, 1], "the forward ran blocks after the tapped one"
    torch.testing.assert_close(tokens, reference, rtol=0, atol=0)


@pytest.mark.parametrize("decoder", ["conv-4", "conv-12", "conv-20", "linear", "attention"])
@pytest.mark.parametrize(("backbone", "side"), [(TINY_P14, 256), (TINY_BACKBONE, 224)])
def test_each_decoder_gives_sixteen_pixels_per_token(decoder, backbone, side):
    model = create_model(ModelConfig(backbone, head=None, decoder=decoder, layer=0)).eval()

    with torch.no_grad():
        output = model(torch.randn(2, 3, 224, 224))

    p_fake = model.p_fake(output)
    assert output.maps.shape == (2, 1, side, side) and side == model.config.map_size
    assert p_fake.shape == (2,) and ((0 < p_fake) & (p_fake < 1)).all()


def test_conv_n_has_n_convolutions_before_the_final_one():
    model = create_model(ModelConfig(TINY_P14, head=None, decoder="conv-12", layer=0))
    convolutions = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == 12 + 1
    assert [c.out_channels for c in convolutions[::3]] == [512, 256, 128, 64, 1]


@pytest.mark.parametrize("name", ["conv-5", "conv", "mlp", "conv-0"])
def test_a_decoder_name_outside_the_known_forms_is_refused_with_them(name):
    with pytest.raises(ValueError, match="conv-N"):
        DecoderSpec.parse(name)


@pytest.mark.parametrize("make", [
    lambda: create_model(ModelConfig(TINY_P14, head=None, decoder="attention", layer=2)),
    lambda: create_model(ModelConfig(TINY_P14, decoder="conv-4", layer=1)),
])
def test_a_saved_localizer_or_joint_model_loads_back_identical(make, tmp_path):
    torch.manual_seed(0)
    model = make().eval()
    pixels = torch.randn(1, 3, 224, 224)

    save_model(model, tmp_path / "saved", provenance={"run": "unit"})
    loaded, provenance = load_model(tmp_path / "saved")

    assert type(loaded) is type(model) and loaded.config == model.config and provenance["run"] == "unit"
    with torch.no_grad():
        again, before = loaded(pixels, maps=True), model(pixels, maps=True)
    torch.testing.assert_close(again.maps, before.maps, rtol=0, atol=0)
    assert (again.logits is None) == (before.logits is None) == (not model.has_head)
    if model.has_head:
        torch.testing.assert_close(again.logits, before.logits, rtol=0, atol=0)


def test_the_joint_model_maps_as_the_localizer_and_scores_as_the_detector_with_the_same_weights():
    torch.manual_seed(0)
    joint = create_model(ModelConfig(TINY_P14, decoder="conv-4", layer=1)).eval()
    localizer = create_model(ModelConfig(TINY_P14, head=None, decoder="conv-4", layer=1)).eval()
    detector = create_model(ModelConfig(TINY_P14)).eval()
    localizer.backbone.load_state_dict(joint.backbone.state_dict())
    localizer.decoder.load_state_dict(joint.decoder.state_dict())
    detector.load_state_dict({k: v for k, v in joint.state_dict().items() if not k.startswith("decoder.")})
    pixels = torch.randn(2, 3, 224, 224)

    with torch.no_grad():
        both = joint(pixels, maps=True)

        torch.testing.assert_close(both.maps, localizer(pixels).maps, rtol=0, atol=1e-6)
        torch.testing.assert_close(both.logits, detector(pixels).logits, rtol=0, atol=1e-6)


def test_a_detector_with_a_decoder_returns_p_fake_and_a_map_from_one_call(tmp_path, face_crop):
    torch.manual_seed(0)
    folder = save_model(create_model(ModelConfig(TINY_P14, decoder="conv-4", layer=1)), tmp_path / "joint")
    detector = clipforensics.load(folder, device="cpu")

    decoded = []
    detector.model.decoder.register_forward_hook(lambda *_: decoded.append(True))

    result = detector.predict(face_crop, faces="none", maps=True)[0]
    plain = detector.predict(face_crop, faces="none", maps=False)[0]

    assert decoded == [True], "the decoder ran once, for the call that asked for maps"
    assert detector.has_head and detector.has_decoder and detector.config.kind == "joint"
    assert result.map.shape == Image.open(face_crop).size[::-1] and plain.map is None
    assert result.p_fake == pytest.approx(plain.p_fake, abs=1e-6)


def test_asking_a_plain_detector_for_maps_is_refused(tiny_detector, face_crop):
    detector = clipforensics.Predictor(tiny_detector)
    with pytest.raises(ValueError, match="no decoder"):
        detector.predict(face_crop, faces="none", maps=True)
