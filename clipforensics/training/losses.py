"""Metric losses on the unit hypersphere, and slerp feature augmentation, of the LN-tuned CLIP detector.

``uniformity`` and ``alignment`` are Wang & Isola (2020, "Understanding Contrastive Representation
Learning through Alignment and Uniformity on the Hypersphere", arXiv:2005.10242), alignment in the
label-aware form of the reference code (yermandy/deepfake-detection and yermandy/GenD,
``src/losses/unifalign.py``): positives are samples with the same label. ``slerp`` and
``slerp_augment`` follow deepfake-detection's ``src/model/dfdet.py``. GenD trains with
CE + 0.5 uniformity + 0.1 alignment; the features passed in are the L2-normalised ones the head sees.
``mask_bce`` is DeCLIP's per-pixel loss on the localization map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SMALL_ANGLE = 1e-4
"""Below this angle (radians) slerp interpolates linearly and renormalises: sin(theta) is too small to divide by."""


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log mean_{i<j} exp(-t ||z_i - z_j||^2) over the distinct pairs of a batch z [N, D] of L2-normalised
    features (not normalised here); lower is more uniform. 0 for fewer than two samples.

    The reference clamps the mean at 1e-6 before the log; here the log-mean-exp is computed stably instead,
    which gives the same value whenever that clamp does not bind (always with t = 2 on the unit sphere,
    where ||z_i - z_j||^2 <= 4 and exp(-8) > 1e-6).
    """
    if z.shape[0] < 2:
        return z.new_zeros(())
    exponents = torch.pdist(z).pow(2).mul(-t)
    return torch.logsumexp(exponents, dim=0) - math.log(exponents.numel())


def alignment(z: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """mean ||z_i - z_j||^alpha over the pairs i < j of a batch z [N, D] of L2-normalised features that
    share a label; 0 when no two samples share one."""
    if labels.shape != z.shape[:1]:
        raise ValueError(f"need one label per feature, got labels {tuple(labels.shape)} for features {tuple(z.shape)}")
    first, second = (labels[:, None] == labels[None, :]).triu(diagonal=1).nonzero(as_tuple=True)
    if first.numel() == 0:
        return z.new_zeros(())
    return (z[first] - z[second]).norm(dim=1).pow(alpha).mean()


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation from a (t = 0) to b (t = 1) along the great circle through them.

    a, b [..., D] are normalised first; t is a number or a tensor broadcastable to [..., 1]. The result
    has unit norm and the inputs' dtype (it is computed in float32 or wider). The angle is
    2 atan2(||a - b||, ||a + b||), accurate at every scale; under ``SMALL_ANGLE`` (a == b included) the
    interpolation is linear and renormalised, so there is no 0 / 0 and no NaN gradient.
    Antipodal points have no unique great circle: their result is arbitrary.
    """
    given = torch.promote_types(a.dtype, b.dtype)
    dtype = torch.promote_types(given, torch.float32)
    a, b = F.normalize(a.to(dtype), dim=-1), F.normalize(b.to(dtype), dim=-1)
    t = torch.as_tensor(t, dtype=dtype, device=a.device)
    theta = 2 * torch.atan2((a - b).norm(dim=-1, keepdim=True), (a + b).norm(dim=-1, keepdim=True))
    small = theta < SMALL_ANGLE
    sin_theta = torch.where(small, torch.ones_like(theta), torch.sin(theta))
    weight_a = torch.where(small, 1 - t, torch.sin((1 - t) * theta) / sin_theta)
    weight_b = torch.where(small, t, torch.sin(t * theta) / sin_theta)
    return F.normalize(weight_a * a + weight_b * b, dim=-1).to(given)


def slerp_augment(
    features: torch.Tensor,
    labels: torch.Tensor,
    t_range: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Features [N, D] moved along the sphere towards a random partner of the same class (training only).

    As dfdet.py: for each class with at least two samples, the partners are a random permutation of the
    class's samples (so a sample may draw itself and stay put), and each sample is replaced by
    slerp(feature, partner, t) with its own t ~ U[t_range]. The output has the input's shape and order, so
    ``labels`` still describe it, and every row is L2-normalised (dfdet.py leaves a class with one sample
    unnormalised; the detector's head normalises anyway). Gradients flow to ``features``. Random numbers
    come from ``generator`` (on its device) or torch's default CPU generator.
    """
    if labels.shape != features.shape[:1]:
        raise ValueError(f"need one label per feature, got labels {tuple(labels.shape)} for {tuple(features.shape)}")
    start, stop = t_range
    device = generator.device if generator is not None else torch.device("cpu")
    mixed = F.normalize(features.to(torch.promote_types(features.dtype, torch.float32)), dim=-1)
    for label in labels.unique():
        members = (labels == label).nonzero(as_tuple=True)[0]
        if members.numel() < 2:
            continue
        partners = members[torch.randperm(members.numel(), generator=generator, device=device).to(members.device)]
        t = start + (stop - start) * torch.rand(members.numel(), 1, generator=generator, device=device)
        mixed = mixed.index_put((members,), slerp(mixed[members], mixed[partners], t.to(features.device)))
    return mixed.to(features.dtype)


def mask_bce(logits: torch.Tensor, target: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel binary cross-entropy of map logits [B, 1, h, w] against soft masks [B, 1, H, W] in
    [0, 1] (DeCLIP's loss), over the images that have a mask; the map is resized (bilinear) to the
    mask's size when they differ. Zero, still attached to the graph, when no image has a mask."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    kept = has_mask.bool()
    if not kept.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[kept], target[kept].to(logits.dtype))
