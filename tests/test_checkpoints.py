"""Own format round trip, published-layout importers, and refusals that name what went wrong."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import clipforensics
from clipforensics.hub.checkpoints import load_model, save_model
from clipforensics.errors import CheckpointError
from clipforensics.models.tuning import apply_tuning


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_save_then_load_is_bit_exact(tiny_detector, tmp_path):
    save_model(tiny_detector, tmp_path / "model", provenance={"run": "unit"})

    loaded, provenance = load_model(tmp_path / "model")

    assert loaded.config == tiny_detector.config
    assert _same_tensors(loaded.state_dict(), tiny_detector.state_dict())
    assert provenance["layout"] == "clipforensics" and provenance["run"] == "unit"
    pixels = torch.randn(2, 3, 224, 224)
    assert torch.equal(loaded(pixels).logits, tiny_detector(pixels).logits)


def test_saved_folder_holds_a_readable_config_and_safetensors(tiny_detector, tmp_path):
    save_model(tiny_detector, tmp_path)

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["format"] == "clipforensics"
    assert config["backbone"]["width"] == 64 and config["head"] == "LinearNorm"
    assert config["preprocessing"]["size"] == 224 and config["labels"] == ["real", "fake"]
    assert set(load_file(tmp_path / "model.safetensors")) == set(tiny_detector.state_dict())


def test_detector_save_round_trips_through_load(tiny_detector, tmp_path):
    detector = clipforensics.Predictor(tiny_detector, precision="fp32")
    detector.save(tmp_path / "again")

    again = clipforensics.load(tmp_path / "again", precision="fp32")

    pixels = torch.randn(3, 3, 224, 224)
    assert torch.equal(again.predict_tensor(pixels), detector.predict_tensor(pixels))


def test_lora_adapters_are_merged_on_save_and_outputs_are_kept(tiny_detector, tmp_path):
    apply_tuning(tiny_detector, "lora")
    for name, parameter in tiny_detector.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.5)
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        before = tiny_detector(pixels).logits

    save_model(tiny_detector, tmp_path)
    loaded, _ = load_model(tmp_path)

    assert not any("lora" in key for key in loaded.state_dict())
    torch.testing.assert_close(loaded(pixels).logits, before, atol=1e-5, rtol=0)


def test_lightning_import_uses_the_tuned_layernorm_copies(reference):
    raw = torch.load(reference / "lnclip-lightning.ckpt", weights_only=True)["state_dict"]
    prefix = "feature_extractor.base_model.model.vision_model.post_layernorm."

    model, provenance = load_model(reference / "lnclip-lightning.ckpt")

    tuned = raw[prefix + "ln_tuning_layers.default.weight"]
    assert not torch.equal(tuned, raw[prefix + "base_layer.weight"])
    assert torch.equal(model.backbone.vision.post_layernorm.weight, tuned)
    assert provenance["layout"] == "deepfake-detection-lightning"
    assert provenance["backbone"] == "tiny-clip-for-tests"


@pytest.mark.parametrize("checkpoint", ["lnclip-lightning.ckpt", "gend-hf"])
def test_architecture_is_read_from_the_tensors(reference, checkpoint):
    model, _ = load_model(reference / checkpoint)

    backbone = model.config.backbone
    assert (backbone.width, backbone.heads, backbone.patch_size, backbone.image_size) == (128, 2, 14, 224)
    assert backbone.layers == len(model.backbone.vision.encoder.layers)
    assert model.config.head == "LinearNorm"


def test_an_unknown_file_is_refused_naming_the_file_and_the_layouts_tried(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00" * 64)

    with pytest.raises(CheckpointError) as error:
        load_model(path)

    message = str(error.value)
    assert str(path) in message
    for layout in ("clipforensics", "deepfake-detection-lightning", "gend-hf"):
        assert layout in message


def test_a_damaged_lightning_checkpoint_gets_one_clear_error(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint")

    with pytest.raises(CheckpointError, match=r"model\.ckpt.*torch\.load"):
        load_model(path)


class _Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_a_checkpoint_with_pickled_code_is_refused_not_executed(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with path.open("wb") as file:
        pickle.dump({"state_dict": {}, "payload": _Payload()}, file)

    with pytest.raises(CheckpointError, match="weights_only"):
        load_model(path)
    assert "arbitrary code ran" not in capsys.readouterr().out


def test_tensors_that_do_not_fit_are_listed(tiny_detector, tmp_path):
    save_model(tiny_detector, tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["head.extra"] = torch.zeros(1)
    del state["head.bias"]
    save_file(state, tmp_path / "model.safetensors")

    with pytest.raises(CheckpointError) as error:
        load_model(tmp_path)
    assert "missing: head.bias" in str(error.value) and "unexpected: head.extra" in str(error.value)


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "nowhere.ckpt")


@pytest.mark.parametrize("name", ["model.ckpt", "weights.pth"])
def test_random_bytes_as_a_checkpoint_get_one_line_of_the_tools_own(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * 16)

    with pytest.raises(CheckpointError) as error:
        load_model(path)

    message = str(error.value)
    assert str(path) in message and "not a PyTorch checkpoint" in message
    assert "\n" not in message and "weights_only=False" not in message and "file an issue" not in message


def test_pickled_code_is_refused_in_one_line_without_advice_to_run_it(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": {}, "payload": _Payload()}))

    with pytest.raises(CheckpointError) as error:
        load_model(path)

    message = str(error.value)
    assert "refused" in message and "\n" not in message and "weights_only=False" not in message


def test_garbage_safetensors_in_a_folder_is_named(tiny_detector, tmp_path):
    save_model(tiny_detector, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(bytes(range(256)) * 16)

    with pytest.raises(CheckpointError, match=r"model\.safetensors as safetensors"):
        load_model(tmp_path)


def test_a_folder_of_weights_without_config_says_what_is_missing(tiny_detector, tmp_path):
    save_model(tiny_detector, tmp_path)
    (tmp_path / "config.json").unlink()

    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path)


def test_a_broken_config_json_is_reported_as_broken(tiny_detector, tmp_path):
    save_model(tiny_detector, tmp_path)
    (tmp_path / "config.json").write_text('{"format": "clipforensics",')

    with pytest.raises(CheckpointError) as error:
        load_model(tmp_path)

    message = str(error.value)
    assert str(tmp_path / "config.json") in message and "not valid JSON" in message and "line 1" in message
    assert "not a checkpoint this tool knows" not in message
