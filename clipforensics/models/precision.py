"""Which tensors a model keeps in bf16 when it runs in bf16.

Under autocast every linear casts its float32 weights to bf16 on every call (for a ViT-L/14, 1.2 GB read and
0.6 GB written a batch). A model that runs in bf16 keeps those weights and biases in bf16 instead, so no cast
runs, and computes what autocast over float32 weights computed, bit for bit: the same bf16 operands. Everything
else stays float32 -- LayerNorms, position and class embeddings, layer scales, the head -- and autocast still
runs LayerNorms, softmax and the head's normalisation in float32; the residual stream stays float32 too.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

BF16_MODULES: dict[str, tuple[type[nn.Module], ...]] = {"backbone": (nn.Linear,), "decoder": (nn.Linear, nn.Conv2d)}
"""Where nearly all the arithmetic is, by part of the model: the tower's linears (its patch embedding stays float32:
DINOv3 makes its rotary embedding in that weight's dtype, and it is 0.2 % of the FLOPs), the decoder's linears
and convolutions. The head, tiny, stays float32."""

StateDict = dict[str, torch.Tensor]


def bf16_names(model: nn.Module) -> set[str]:
    """Names (as in ``state_dict``) of the tensors ``model`` keeps in bf16 when it runs in bf16."""
    return {f"{name}.{tensor_name}" for name, module in model.named_modules()
            if isinstance(module, BF16_MODULES.get(name.split(".")[0], ()))
            for tensor_name, _ in module.named_parameters(recurse=False)}


def resident(state: StateDict, bf16: set[str]) -> StateDict:
    """``state`` as the model keeps it: the tensors named in ``bf16`` in bf16, every other floating tensor in
    float32 (a half-precision checkpoint is widened, so that it computes as a freshly built model). Converted one
    tensor at a time, each original dropped as soon as it is converted."""
    kept = {}
    for key in list(state):
        tensor = state.pop(key)
        if tensor.is_floating_point():
            tensor = tensor.to(torch.bfloat16 if key in bf16 else torch.float32)
        kept[key] = tensor
    return kept


def cast_norms_once(model: nn.Module) -> None:
    """Has the tower's ``linear_norms`` hand their float32 output on in bf16: autocast would cast it for each
    linear that reads it (CLIP's and DINOv3's attentions have three), to the same bits."""
    norms = model.config.backbone.linear_norms
    for name, module in model.backbone.named_modules():
        if name.rpartition(".")[2] in norms and isinstance(module, nn.LayerNorm):
            module.register_forward_hook(_to_bf16)


def _to_bf16(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.to(torch.bfloat16)


def in_bf16(model: nn.Module) -> nn.Module:
    """``model`` when its ``bf16_names`` tensors already are bf16 (as ``create_model`` builds it for bf16); else a
    copy that keeps them in bf16 and casts its norms once, the model given left as it was (its other tensors
    copied, the bf16 ones converted without a float32 copy)."""
    parameters = dict(model.named_parameters())
    names = bf16_names(model)
    if all(parameters[name].dtype == torch.bfloat16 for name in names):
        return model
    memo = {id(parameters[name]): nn.Parameter(parameters[name].detach().to(torch.bfloat16),
                                               requires_grad=parameters[name].requires_grad) for name in names}
    kept = copy.deepcopy(model, memo)
    cast_norms_once(kept)
    return kept
