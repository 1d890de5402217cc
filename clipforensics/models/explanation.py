"""Why a detector scored a face as it did: a relevance map over its input crop for the score its verdict rests
on: ``s = z_fake - z_real`` (the head's logits on the pooled feature) where the head calls the crop fake, ``-s``
where it calls it real. Like Chefer's and Grad-CAM's reference code, which explain the predicted class unless told
otherwise: a real face has little evidence *for* fake to point at, so a map of ``s`` alone says little there.

``rollout`` (the default) is gradient-weighted attention rollout (Chefer, Gur and Wolf, "Generic
attention-model explainability", 2021): per attention the head-mean of ``clamp(∂y/∂A ⊙ A, min=0)`` for the
verdict score ``y``, accumulated ``R <- R + Ā R`` from the identity; the class token's row of ``R`` (for a tower
that pools by attention, its pooling query's row ``Ā_pool R``) over the patch tokens, register tokens left out.
``gradcam`` is Grad-CAM on the tokens entering the last block (the last block's patch outputs do not reach the
class token): ``relu(Σ_c mean_patches(∂y/∂X_c) X_c)`` per patch, for comparison. Both take one forward and one
backward pass per batch (Grad-CAM runs the blocks before the last without a graph, and backward through the last
alone); the recorded attentions leave the logits exactly as the plain forward gives them.

A map says where the model looked for this score; it is not a mask of edited pixels (a localizer's decoder
answers that).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .towers.attention import AttentionRecorder

METHODS = ("rollout", "gradcam")


@dataclass
class Explained:
    logits: torch.Tensor
    """[B, classes], as the plain forward gives them."""
    maps: torch.Tensor
    """[B, grid, grid] float32: per patch of the input, non-negative, the largest 1 (all 0 when nothing is)."""
    toward_fake: torch.Tensor
    """[B] bool: True where the map explains ``s`` (the head calls the crop fake), False where ``-s`` (real)."""


def explain(model, pixels: torch.Tensor, method: str = "rollout") -> Explained:
    """The logits of a batch of crops [B, 3, H, W] and each crop's relevance map for its score ``s``."""
    if method not in METHODS:
        raise ValueError(f"explanation method must be one of {', '.join(METHODS)}, not {method!r}")
    model.config.require_head("explanations")
    tower = model.backbone
    if method == "rollout":
        recorder = AttentionRecorder()
        with torch.enable_grad(), tower.recording(recorder):
            entering, finish = tower.last_input(pixels.detach().requires_grad_())
            logits, toward_fake, score = _logits_and_score(model, finish(entering))
            gradients = torch.autograd.grad(score, recorder.probabilities)
    else:
        with torch.no_grad():  # the blocks before the last are not on Grad-CAM's path
            entering, finish = tower.last_input(pixels)
        with torch.enable_grad():
            logits, toward_fake, score = _logits_and_score(model, finish(entering.requires_grad_()))
            gradients = torch.autograd.grad(score, [entering])
    with torch.no_grad(), torch.autocast(pixels.device.type, enabled=False):
        if method == "rollout":
            relevance = _rollout(recorder.probabilities, gradients, tower.attention_pooled)
        else:
            weights = tower.grid_tokens(gradients[0].float())[:, 1:].mean(dim=1, keepdim=True)
            relevance = (entering.float() * weights).sum(dim=-1).clamp(min=0)
        patches = tower.grid_tokens(relevance.unsqueeze(-1))[:, 1:, 0]
        side = round(patches.shape[1] ** 0.5)
        top = patches.amax(dim=1, keepdim=True)
        maps = torch.where(top > 0, patches / top.clamp_min(torch.finfo(torch.float32).tiny), 0.0)
    return Explained(logits.detach(), maps.reshape(-1, side, side), toward_fake)


def calls_fake(s: torch.Tensor) -> torch.Tensor:
    """Where the head calls a crop fake (its argmax) from its score ``s``."""
    return s.detach() >= 0


def verdict_score(s: torch.Tensor, toward_fake: torch.Tensor) -> torch.Tensor:
    """The score a verdict rests on: ``s`` where ``toward_fake``, ``-s`` elsewhere."""
    return torch.where(toward_fake, s, -s)


def _logits_and_score(model, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The head's logits on ``pooled``, which crops it calls fake, and the batch's summed verdict score (each
    crop's score depends on its own input alone, so one backward gives every crop's gradients)."""
    logits, _ = model.forward_head(pooled)
    fake, real = model.config.fake_index, model.config.real_index
    s = (logits[:, fake] - logits[:, real]).float()
    toward_fake = calls_fake(s)
    return logits, toward_fake, verdict_score(s, toward_fake).sum()


def _rollout(probabilities: list[torch.Tensor], gradients: tuple[torch.Tensor, ...], pooled: bool) -> torch.Tensor:
    """[B, tokens]: the relevance of every token entering block 0 for the pooled feature."""
    weighted = [gradient.mul_(attention).clamp_(min=0).mean(dim=1) for attention, gradient in zip(probabilities,
                                                                                                gradients)]
    blocks, pool = (weighted[:-1], weighted[-1]) if pooled else (weighted, None)
    batch, tokens = blocks[0].shape[:2]
    rollout = torch.eye(tokens, device=blocks[0].device).expand(batch, tokens, tokens)
    for mixing in blocks:
        rollout = rollout + mixing @ rollout
    return (pool @ rollout)[:, 0] if pooled else rollout[:, 0]

