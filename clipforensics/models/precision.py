"""Which tensors a model keeps in bf16 when it runs in bf16.

Under autocast every linear casts its float32 weights to bf16 on every call (for a ViT-L/14, 1.2 GB read and
0.6 GB written a batch). A model that runs in bf16 keeps those weights and biases in bf16 instead, so no cast
runs, and computes what autocast over float32 weights computed, bit for bit: the same bf16 operands. Everything
else stays float32 -- LayerNorms, position and class embeddings, layer scales, the head -- and autocast still
runs LayerNorms, softmax and the head's normalisation in float32; the residual stream stays float32 too.

For inference on a CPU, each bf16 linear also keeps its weight packed in oneDNN's blocked layout: ``F.linear`` on
the plain layout reorders the weight inside every call, and on a ViT-L/14's shapes reached about 0.7 of the
square-matmul peak where the packed weight reaches 0.9-1.0 (AVX512-BF16), with the same bits out. Packing is a
second copy of those weights; a call that records gradients (explanations, training) takes the plain path.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

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


class PackedLinear(nn.Linear):
    """A bf16 ``nn.Linear`` that also holds its weight packed (``pack_linears``): without gradients, on bf16 input,
    it runs oneDNN's linear on the packed copy; else, or once its weight changed, it is a plain linear."""

    packed: torch.Tensor
    packed_version: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() or x.dtype != torch.bfloat16 or x.device.type != "cpu"
                or self.weight._version != self.packed_version):
            return super().forward(x)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux lists them in ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``...); none
    where it cannot be read."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), ()))


def packs_linears() -> bool:
    """Whether oneDNN runs bf16 linears on this CPU (AVX512 and up), which packing needs."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def pack_linears(model: nn.Module) -> None:
    """Makes each bf16 linear of the tower and the decoder on the CPU a ``PackedLinear`` (its tensors and
    ``state_dict`` unchanged), where ``packs_linears``: once a model is where it runs, for inference."""
    if not packs_linears():
        return
    for name, module in model.named_modules():
        if (type(module) is nn.Linear and name.split(".")[0] in BF16_MODULES
                and module.weight.dtype == torch.bfloat16 and module.weight.device.type == "cpu"):
            module.__class__ = PackedLinear
            module.packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), PACKED_ROWS)
            module.packed_version = module.weight._version


PACKED_ROWS = 256
"""The batch size oneDNN is told to pack for: a hint only (one layout served 257 to 8224 rows alike)."""


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
