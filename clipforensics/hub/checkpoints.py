"""The project's checkpoint format and importers for the published layouts.

Own format: a folder with ``config.json`` (the model's kind -- detector, localizer or joint --, its
architecture, head or decoder, preprocessing, provenance) and ``model.safetensors``. Published
layouts (deepfake-detection's Lightning .ckpt, GenD's Hugging Face folder, DeCLIP's .pth) are
recognised from their contents and remapped by one filter function each; architecture always comes
from the tensors, never from a download. Every layout ends in ``create_model(config, state)``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models.backbones import FAMILIES, infer_backbone_config
from ..models.pretrained import openai_visual_to_tower
from ..models.detector import HEADS
from ..models.factory import create_model
from ..models.model import ForensicsModel, ModelConfig
from ..models.tuning import merge_lora, merged_state_dict
from .files import read_json, read_safetensors, torch_load

FORMAT = "clipforensics"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

StateDict = dict[str, torch.Tensor]


def save_model(model: ForensicsModel, folder: str | Path, provenance: dict | None = None) -> Path:
    """Writes ``folder/config.json`` and ``folder/model.safetensors`` (LoRA adapters merged)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, **model.config.to_dict()}
    config["provenance"] = provenance or {}
    state = {name: tensor.detach().contiguous() for name, tensor in merged_state_dict(model).items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_model(path: str | Path, bf16: bool = False) -> tuple[ForensicsModel, dict]:
    """Loads any known layout; returns the model (eval mode, with ``bf16`` holding the tensors a model running in
    bf16 keeps in bf16, read straight into them) and its provenance record."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(_missing(path))
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        read_json(path / CONFIG_FILE)  # a broken config.json is reported as such, not as an unknown layout
    for layout, (recognises, read) in LAYOUTS.items():
        if recognises(path):
            try:
                config, state, provenance = read(path)
                model = create_model(config, state, bf16=bf16)
            except CheckpointError as error:
                raise CheckpointError(f"{path} ({layout} layout): {error}") from None
            return model.eval(), {**provenance, "layout": layout, "source": str(path)}
    if path.is_dir() and (path / WEIGHTS_FILE).is_file() and not (path / CONFIG_FILE).exists():
        raise CheckpointError(f"{path} holds {WEIGHTS_FILE} but no {CONFIG_FILE}, which says what model the "
                              "tensors make: copy the config.json that came with the weights beside them")
    raise CheckpointError(
        f"{path} is not a checkpoint this tool knows; layouts tried: {', '.join(LAYOUTS)} "
        "(a clipforensics folder with config.json + model.safetensors, a deepfake-detection "
        "Lightning .ckpt, a GenD Hugging Face folder, or a DeCLIP .pth)"
    )


def _missing(path: Path) -> str:
    """What to say about a path that does not exist: the zoo names it may be a misspelling of."""
    from .zoo import closest_names

    near = closest_names(str(path))
    if not near:
        return f"{path}: no such file or folder (nor a zoo name: see clipforensics zoo)"
    return f"{path}: no such file or folder, nor a zoo name; did you mean {' or '.join(near)}?"


def own_config(path: str | Path) -> dict | None:
    """The ``config.json`` of a model folder in the project's format (with what ``calibrate`` adds to it); None
    for a published layout."""
    path = Path(path)
    return read_json(path / CONFIG_FILE) if _is_own(path) else None


def save_model_with(source: Path, folder: Path, entries: dict) -> Path:
    """Writes the model ``source`` into the existing ``folder`` with ``entries`` added to its ``config.json``:
    a folder in the project's format has its weights hard-linked (copied where the filesystem refuses a link)
    rather than written again; any other layout is read again in full precision (not as a bf16 predictor holds
    it) and saved in this format."""
    config = own_config(source)
    if config is not None:
        _link_or_copy(source / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    else:
        model, provenance = load_model(source)
        save_model(model, folder, provenance)
        config = read_json(folder / CONFIG_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps({**config, **entries}, indent=2) + "\n")
    return folder


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (the weights are not duplicated), or a copy where the filesystem refuses one."""
    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)


def _tower(state: StateDict) -> StateDict:
    """The backbone's tensors, keyed relative to the tower."""
    return {k[len("backbone.vision.") :]: v for k, v in state.items() if k.startswith("backbone.vision.")}


# --- own format ---------------------------------------------------------------------------------


def _is_own(path: Path) -> bool:
    return path.is_dir() and _json_field(path / CONFIG_FILE, "format") == FORMAT


def _read_own(path: Path) -> tuple[ModelConfig, StateDict, dict]:
    data = read_json(path / CONFIG_FILE)
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError("written by a newer clipforensics; upgrade to read it")
    try:
        config = ModelConfig.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"config.json does not describe a model: {error}") from None
    return config, read_safetensors(path / WEIGHTS_FILE), data.get("provenance", {})


def _json_field(path: Path, key: str) -> object:
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


# --- deepfake-detection Lightning .ckpt -----------------------------------------------------------


def _is_lightning(path: Path) -> bool:
    return path.is_file() and path.suffix == ".ckpt"


def _read_lightning(path: Path) -> tuple[ModelConfig, StateDict, dict]:
    checkpoint = torch_load(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError("no 'state_dict' entry: not a Lightning checkpoint")
    hparams = checkpoint.get("hyper_parameters") or {}
    state = lightning_filter(checkpoint["state_dict"], hparams.get("peft") or {})
    config = _detector_config(state, hparams.get("head", "linear"), hparams.get("backbone", "unknown"))
    provenance = {"backbone": hparams.get("backbone"), "epoch": checkpoint.get("epoch"),
                  "global_step": checkpoint.get("global_step"), "run_name": hparams.get("run_name")}
    return config, state, provenance


def lightning_filter(state: StateDict, peft: dict) -> StateDict:
    """deepfake-detection keys to the project's: unwrap PEFT, keep the tuned LayerNorm copies, merge LoRA."""
    tower_prefixes = ("feature_extractor.base_model.model.vision_model.", "feature_extractor.vision_model.")
    tower: StateDict = {}
    out: StateDict = {}
    for key, tensor in state.items():
        prefix = next((p for p in tower_prefixes if key.startswith(p)), None)
        if prefix is not None:
            tower[key[len(prefix) :]] = tensor
        elif key.startswith("model.linear."):
            out["head." + key[len("model.linear.") :]] = tensor
        else:
            raise CheckpointError(f"unexpected tensor {key}")
    for key, tensor in _unwrap_peft(tower, peft.get("lora") or {}).items():
        out["backbone.vision." + key] = tensor
    return out


def _unwrap_peft(tower: StateDict, lora: dict) -> StateDict:
    """The tuned LayerNorm copies (``ln_tuning_layers``) replace the frozen ones they wrap; LoRA is merged."""
    if lora.get("use_dora"):
        raise CheckpointError("DoRA adapters are not supported; merge them before importing")
    tuned = {key.replace(".ln_tuning_layers.default.", ".base_layer."): tensor for key, tensor in tower.items()
             if ".ln_tuning_layers.default." in key}
    wrapped = {key: tuned.get(key, tensor) for key, tensor in tower.items() if ".ln_tuning_layers." not in key}
    alpha, rslora = lora.get("alpha"), lora.get("use_rslora")
    return merge_lora(wrapped, lambda _, rank: (alpha or rank) / (rank**0.5 if rslora else rank))


# --- GenD Hugging Face folder ---------------------------------------------------------------------


def _is_gend(path: Path) -> bool:
    return path.is_dir() and _json_field(path / CONFIG_FILE, "model_type") == "GenD"


def _read_gend(path: Path) -> tuple[ModelConfig, StateDict, dict]:
    meta = read_json(path / CONFIG_FILE)
    state = gend_filter(read_safetensors(path / WEIGHTS_FILE))
    config = _detector_config(state, meta.get("head", "linear"), meta.get("backbone", "unknown"))
    return config, state, {"backbone": meta.get("backbone")}


def gend_filter(state: StateDict) -> StateDict:
    """GenD keys to the project's: a CLIP tower (``feature_extractor.vision_model.*``; CLIP's unused visual
    projection is dropped), a DINOv3 one (``feature_extractor.backbone.*`` as transformers 4.56 names it,
    whose ``layer.N`` blocks transformers 5 keeps under ``model.layer.N``) or a Perception Encoder one
    (``feature_extractor.backbone.*`` as timm names it, which the project's tower keeps), and the head."""
    out: StateDict = {}
    for key, tensor in state.items():
        if key.startswith("feature_extractor.vision_model."):
            out["backbone.vision." + key[len("feature_extractor.vision_model.") :]] = tensor
        elif key.startswith("feature_extractor.backbone."):
            name = key[len("feature_extractor.backbone.") :]
            out["backbone.vision." + FAMILIES["dinov3"].weights.tower_key(name)] = tensor  # PE's names: unchanged
        elif key.startswith("model.linear."):
            out["head." + key[len("model.linear.") :]] = tensor
        elif key != "feature_extractor.visual_projection.weight":
            raise CheckpointError(
                f"unexpected tensor {key}: only GenD checkpoints with a CLIP, DINOv3 or Perception Encoder backbone "
                "are supported"
            )
    return out


def _detector_config(state: StateDict, head: str, backbone_name: str) -> ModelConfig:
    if head not in HEADS:
        raise CheckpointError(f"head {head!r} is not supported (supported: {', '.join(HEADS)})")
    backbone = infer_backbone_config(_tower(state), name=backbone_name)
    classes = state["head.weight"].shape[0] if "head.weight" in state else 2
    if classes != 2:
        raise CheckpointError(f"the head has {classes} outputs; only real/fake (2) heads are supported")
    return ModelConfig(backbone, head)


# --- DeCLIP .pth -----------------------------------------------------------------------------------


def _is_declip(path: Path) -> bool:
    return path.is_file() and path.suffix == ".pth"


def _read_declip(path: Path) -> tuple[ModelConfig, StateDict, dict]:
    checkpoint = torch_load(path)
    if not isinstance(checkpoint, dict) or not {"model", "feature_layer", "decoder_type"} <= checkpoint.keys():
        raise CheckpointError("expected DeCLIP's {'model', 'feature_layer', 'decoder_type', ...}")
    layer = _declip_layer(str(checkpoint["feature_layer"]))
    state = declip_filter(checkpoint["model"])
    try:
        config = ModelConfig(infer_backbone_config(_tower(state), name="declip-clip"), head=None,
                             decoder=str(checkpoint["decoder_type"]), layer=layer)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    return config, state, {"feature_layer": checkpoint["feature_layer"], "decoder_type": checkpoint["decoder_type"],
                           "total_steps": checkpoint.get("total_steps")}


def _declip_layer(name: str) -> int:
    if not (name.startswith("layer") and name[5:].isdigit()):
        raise CheckpointError(f"feature_layer {name!r}: only a single ViT block (layerK) is supported")
    return int(name[5:])


def declip_filter(state: StateDict) -> StateDict:
    """DeCLIP keys to the project's: the OpenAI visual tower converted (the text tower and the unused
    projections dropped), the decoder's ``fc``/``att1``/``att2`` kept under ``decoder.``."""
    out = {f"backbone.vision.{k}": v for k, v in openai_visual_to_tower(state, prefix="model.visual.").items()}
    out.update({f"decoder.{k}": v for k, v in state.items() if k.split(".")[0] in ("fc", "att1", "att2")})
    return out


Reader = Callable[[Path], tuple[ModelConfig, StateDict, dict]]
LAYOUTS: dict[str, tuple[Callable[[Path], bool], Reader]] = {
    "clipforensics": (_is_own, _read_own),
    "deepfake-detection-lightning": (_is_lightning, _read_lightning),
    "gend-hf": (_is_gend, _read_gend),
    "declip": (_is_declip, _read_declip),
}
