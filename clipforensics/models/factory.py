"""``create_model(config)``: the one place a model is built, for loading, importing and training.

With a state dict, the model is built without random initialisation (its parameters on the meta
device) and the loaded tensors are assigned as they are, so loading holds one copy of the weights.
Without one, the model starts from random weights (DeCLIP's normal(0, 0.02) for a decoder), and its
tower optionally from pretrained tensors (``hub.towers.read_tower_weights`` reads them from a local folder or
the hub).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError
from .localizer import initialise_decoder
from .model import ForensicsModel, ModelConfig
from .precision import bf16_names, cast_norms_once, resident

StateDict = dict[str, torch.Tensor]


def create_model(config: ModelConfig, state: StateDict | None = None,
                 tower: StateDict | None = None, bf16: bool = False) -> ForensicsModel:
    """A model for ``config``: with ``state`` (the whole model's tensors, e.g. from a checkpoint; emptied as it
    is read) loaded strictly and without a second copy, with ``bf16`` straight into the dtypes a model running
    in bf16 keeps (``models.precision``); else freshly initialised, the vision tower from ``tower`` (its pretrained
    tensors, keyed relative to the tower) when given."""
    if state is not None:
        from accelerate import init_empty_weights

        with init_empty_weights(include_buffers=False):
            model = ForensicsModel(config)
        load_strict(model, resident(state, bf16_names(model) if bf16 else set()), "the model", assign=True)
        if bf16:
            cast_norms_once(model)
        return model
    model = ForensicsModel(config)
    if config.has_decoder:
        initialise_decoder(model.decoder)
    if tower is not None:
        load_strict(model.backbone.vision, tower,
                    f"the {config.backbone.family} vision tower {config.backbone.name}")
    return model


def load_strict(module: nn.Module, state: StateDict, what: str, assign: bool = False) -> None:
    """Loads ``state`` into ``module``; any missing or unexpected tensor is an error that lists them all."""
    result = module.load_state_dict(state, strict=False, assign=assign)
    problems = [f"missing: {key}" for key in result.missing_keys]
    problems += [f"unexpected: {key}" for key in result.unexpected_keys]
    if problems:
        raise CheckpointError(f"tensors do not fit {what}:\n  " + "\n  ".join(problems))

