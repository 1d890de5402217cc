"""`clipforensics train` configs are validated before anything starts: every problem is a usage error
(exit 2) naming the field, never a traceback or a download."""

from pathlib import Path

import pytest

from clipforensics.cli import main
from clipforensics.errors import UsageError
from clipforensics.training import TrainConfig, load_config

PRESET = str(Path(__file__).resolve().parents[1] / "configs" / "lnclip-l14-ffpp.yaml")


@pytest.mark.parametrize(("setting", "named"), [
    ("trainer.epochs=two", "trainer.epochs"),
    ("optim.lr=abc", "optim.lr"),
    ("trainer.devices=2x", "trainer.devices"),
    ("data.fakes=gan", "data.fakes"),
    ("model.backbone={width: 64}", "model.backbone"),
])
def test_a_value_of_the_wrong_kind_is_a_usage_error_naming_its_field(setting, named, capsys):
    status = main(["train", "--config", PRESET, "--set", setting])

    assert status == 2
    assert named in capsys.readouterr().err


def test_a_mapping_without_the_space_after_its_colon_gets_the_yaml_hint(capsys):
    status = main(["train", "--config", PRESET, "--set", "optim={lr:0.001}"])

    assert status == 2
    assert "YAML needs a space after ':', as in {lr: 0.001}" in capsys.readouterr().err


def test_a_wrong_type_in_the_file_names_the_field(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("trainer:\n  epochs: two\n")

    with pytest.raises(UsageError, match="trainer.epochs"):
        load_config(config)


def test_unknown_fields_are_named_with_the_valid_ones():
    with pytest.raises(UsageError, match=r"optim.learning_rate.*valid here: lr, min_lr"):
        TrainConfig.from_dict({"optim": {"learning_rate": 1.0}})


@pytest.mark.parametrize("content", [None, "model: [unclosed\n", "- a list\n"])
def test_a_missing_or_unreadable_config_file_is_a_usage_error(tmp_path, content, capsys):
    config = tmp_path / "run.yaml"
    if content is not None:
        config.write_text(content)

    status = main(["train", "--config", str(config)])

    assert status == 2
    assert str(config) in capsys.readouterr().err


def test_train_without_a_config_is_a_usage_error(capsys):
    status = main(["train", "--set", "model.weights=null"])

    assert status == 2
    assert "--config" in capsys.readouterr().err


def test_the_validated_config_keeps_attribute_access_and_round_trips():
    config = load_config(PRESET, ["optim.lr=1e-3", "trainer.devices=2"])

    assert (config.optim.lr, config.trainer.devices, config.loss.slerp_range) == (1e-3, 2, (0.0, 1.0))
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert "a localizer alone" in TrainConfig.model_fields["model"].annotation.model_fields["head"].description


@pytest.mark.parametrize(("setting", "problem"), [
    (["model.head=null"], {"backbone": "openai/clip-vit-base-patch16", "head": None}),
    (["model.decoder=linear", "model.layer=12"], {"backbone": "openai/clip-vit-base-patch16", "decoder": "linear",
                                                   "layer": 12}),
    (["model.decoder=conv-5"], {"backbone": "openai/clip-vit-base-patch16", "decoder": "conv-5"}),
])
def test_the_model_section_is_refused_with_the_model_configs_own_words(setting, problem):
    from clipforensics.models.model import ModelConfig

    with pytest.raises(ValueError) as refused_by_the_model:
        ModelConfig(**problem)
    with pytest.raises(UsageError) as refused_by_the_config:
        load_config(None, ["model.backbone=openai/clip-vit-base-patch16", *setting])

    assert str(refused_by_the_config.value) == f"config with --set: model: {refused_by_the_model.value}"
