"""A vision tower's pretrained base weights, what training starts from (``model.weights``): a local folder of
its family's files, or ``"hub"`` for the pretrained tower of a known name."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models.backbones import FAMILIES, BackboneConfig
from .files import read_safetensors, torch_load
from .zoo import hub_snapshot

StateDict = dict[str, torch.Tensor]
WEIGHTS_INSTEAD = ("give its folder ({what}) as the base weights (in a training config: model.weights, e.g. --set "
                   "model.weights=path/to/folder), or null to start from random weights")


def read_tower_weights(config: BackboneConfig, source: str | Path) -> StateDict:
    """The tower's tensors from ``source``: a local folder (``model.safetensors``, or ``pytorch_model.bin``),
    or ``"hub"`` for the pretrained tower of ``config.name`` (one of the known names)."""
    weights = FAMILIES[config.family].weights
    if str(source) == "hub":
        repo = weights.repo(config.name)
        folder = hub_snapshot(repo, weights.files, WEIGHTS_INSTEAD.format(what=weights.what))
    else:
        folder = Path(source)
    if (folder / "model.safetensors").is_file():
        state = read_safetensors(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        state = torch_load(folder / "pytorch_model.bin")
    else:
        raise CheckpointError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    tower = {name: tensor for key, tensor in state.items() if (name := weights.tower_key(key)) is not None}
    if not tower:
        raise CheckpointError(f"{folder} holds no tensors of a {config.family} tower: not {weights.what}")
    return tower
