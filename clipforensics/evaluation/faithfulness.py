"""Whether an explanation is faithful to the model: deletion curves (Samek et al. 2017; Petsiuk et al. 2018).

The most relevant patches of a crop, by the map, are replaced with the crop's mean colour in steps of 10 %, and
the score the map explains is recorded at each step: ``s = z_fake - z_real`` where the head calls the intact crop
fake, ``-s`` where it calls it real (``models.explanation.verdict_score``). The same with random patch orders
(their mean) is the baseline. A faithful map makes the score fall faster than a random order does: the figure is
the area between the random curve and the map's (in units of ``s``, over the fraction deleted from 0 to 1),
positive when the map beats random.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.explanation import calls_fake, verdict_score

STEPS = 10
RANDOM_ORDERS = 10


def score(model, pixels: torch.Tensor) -> torch.Tensor:
    """``s = z_fake - z_real`` [B] of a preprocessed batch."""
    with torch.inference_mode():
        logits = model(pixels).logits.float()
    return logits[:, model.config.fake_index] - logits[:, model.config.real_index]


def deletion_curve(model, pixels: torch.Tensor, order: np.ndarray, patch_size: int,
                   steps: int = STEPS) -> np.ndarray:
    """The verdict score of one preprocessed crop [3, H, W] (``s``, or ``-s`` where the head calls the intact crop
    real) with 0, 1/steps, ..., all of its patches (in ``order``, row-major indices, most relevant first) replaced
    by its mean colour: [steps + 1]."""
    grid = pixels.shape[-1] // patch_size
    mean = pixels.mean(dim=(1, 2), keepdim=True)
    batch = pixels.unsqueeze(0).repeat(steps + 1, 1, 1, 1)
    for step in range(1, steps + 1):
        for index in order[: round(step * len(order) / steps)]:
            row, column = divmod(int(index), grid)
            batch[step, :, row * patch_size : (row + 1) * patch_size,
                  column * patch_size : (column + 1) * patch_size] = mean
    s = score(model, batch)
    return verdict_score(s, calls_fake(s[0])).numpy()


def most_relevant_first(relevance: np.ndarray) -> np.ndarray:
    """Patch indices (row-major) by decreasing relevance, ties in index order."""
    return np.argsort(-relevance.ravel(), kind="stable")


def area_between(baseline: np.ndarray, curve: np.ndarray) -> float:
    """The area between two deletion curves over the fraction deleted (trapezoids): how much lower ``curve``
    runs than ``baseline``."""
    gap = baseline - curve
    return float(((gap[1:] + gap[:-1]) / 2).mean())


def random_curve(model, pixels: torch.Tensor, patch_size: int, rng: np.random.Generator,
                 orders: int = RANDOM_ORDERS) -> np.ndarray:
    """The mean deletion curve of ``orders`` random patch orders."""
    patches = (pixels.shape[-1] // patch_size) ** 2
    return np.mean([deletion_curve(model, pixels, rng.permutation(patches), patch_size) for _ in range(orders)],
                   axis=0)
