"""What trains: a tuning mode is a selection of the detector's parameters (LoRA adds its own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


TUNING_MODES = ("layernorm", "lora", "linear-probe", "full")


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0


@dataclass(frozen=True)
class ParameterCounts:
    trainable: int
    total: int

    def __str__(self) -> str:
        share = 100 * self.trainable / max(self.total, 1)
        return f"{self.trainable:,} trainable of {self.total:,} parameters ({share:.3f} %)"


def apply_tuning(model: nn.Module, mode: str, lora: LoraSettings | None = None) -> ParameterCounts:
    """Freezes everything but what ``mode`` trains (for ``layernorm``, the LayerNorms its backbone family
    names; for ``lora``, adapters on the family's attention projections); the head and the decoder always
    train."""
    if mode not in TUNING_MODES:
        raise ValueError(f"tuning mode must be one of {TUNING_MODES}, not {mode!r}")
    if mode == "lora":
        _inject_lora(model, lora or LoraSettings())
    layernorms = model.config.backbone.layernorms
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(_trains(name, mode, layernorms))
    return count_parameters(model)


def _trains(name: str, mode: str, layernorms: tuple[str, ...]) -> bool:
    if name.startswith(("head.", "decoder.")) or mode == "full":
        return True
    if mode == "layernorm":
        return any(f".{part}." in name for part in layernorms)
    if mode == "lora":
        return ".lora_" in name
    return False


def _inject_lora(model: nn.Module, settings: LoraSettings) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(model.config.backbone.lora_targets),
    )
    inject_adapter_in_model(config, model.backbone)


def count_parameters(model: nn.Module) -> ParameterCounts:
    parameters = list(model.parameters())
    return ParameterCounts(
        trainable=sum(p.numel() for p in parameters if p.requires_grad),
        total=sum(p.numel() for p in parameters),
    )


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors with any LoRA adapters folded into the weights they adapt."""
    scales = {name: module.scaling[adapter] for name, module in model.named_modules()
              if isinstance(getattr(module, "lora_A", None), nn.ModuleDict) and not module.merged
              for adapter in module.active_adapters}
    return merge_lora(model.state_dict(), lambda name, rank: scales.get(name, 0.0))


def merge_lora(state: dict[str, torch.Tensor], scale: Callable[[str, int], float]) -> dict[str, torch.Tensor]:
    """PEFT's wrapped tensors as plain ones: ``X.base_layer.weight`` becomes ``X.weight``, with
    ``scale(X, rank) * lora_B @ lora_A`` of its (default) adapter added; the adapters are dropped."""
    plain = {key.replace(".base_layer.", "."): tensor for key, tensor in state.items() if ".lora_" not in key}
    suffix = ".lora_A.default.weight"
    for key in [k for k in state if k.endswith(suffix)]:
        module = key[: -len(suffix)]
        down, up = state[key], state[f"{module}.lora_B.default.weight"]
        plain[f"{module}.weight"] = plain[f"{module}.weight"] + scale(module, down.shape[0]) * (up @ down)
    return plain
