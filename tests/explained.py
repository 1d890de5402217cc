"""A small detector trained in the tests on a task whose evidence is known: fakes are noise crops with one square
of stripes (the blended region, zero-mean so the crop's mean colour does not give it away), reals the noise alone.
In training, random patches away from the square are flattened to the crop's mean colour, so that the deletion
test's flat patches are neither real nor fake to the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from clipforensics.models.backbones import BackboneConfig
from clipforensics.models.model import ForensicsModel, ModelConfig

SQUARE_BACKBONE = BackboneConfig("tiny-square-clip", 64, 2, 256, 8, 64)
"""An 8 x 8 grid of 8-pixel patches."""
SIDE = 16
"""The blended square's side in pixels (2 x 2 patches)."""


@dataclass
class Crops:
    pixels: torch.Tensor
    """[B, 3, 64, 64], already normalised (noise around 0)."""
    labels: torch.Tensor
    """[B]: 1 for fake."""
    regions: np.ndarray
    """[B, 64, 64] bool: the blended square (empty for a real crop)."""


def crops(count: int, seed: int, flattened: bool = False) -> Crops:
    """Half real, half fake, the fakes' squares anywhere (not aligned to the grid); ``flattened``: up to 90 % of
    the patches away from the square replaced by the crop's mean colour."""
    rng = np.random.default_rng(seed)
    size, patch = SQUARE_BACKBONE.image_size, SQUARE_BACKBONE.patch_size
    pixels = rng.normal(0.0, 0.5, (count, 3, size, size)).astype(np.float32)
    labels = np.arange(count) % 2
    regions = np.zeros((count, size, size), bool)
    stripes = np.where(np.arange(SIDE) % 2, 1.0, -1.0).astype(np.float32)[None, :, None]
    for index in np.flatnonzero(labels):
        top, left = rng.integers(0, size - SIDE, 2)
        regions[index, top : top + SIDE, left : left + SIDE] = True
        pixels[index, :, top : top + SIDE, left : left + SIDE] += stripes
    if flattened:
        cells = regions.reshape(count, size // patch, patch, size // patch, patch).any(axis=(2, 4))
        for index in range(count):
            mean = pixels[index].mean(axis=(1, 2), keepdims=True)
            free = np.flatnonzero(~cells[index].ravel())
            for cell in rng.permutation(free)[: rng.integers(0, int(0.9 * free.size) + 1)]:
                row, column = divmod(int(cell), size // patch)
                pixels[index, :, row * patch : (row + 1) * patch, column * patch : (column + 1) * patch] = mean
    return Crops(torch.from_numpy(pixels), torch.from_numpy(labels), regions)


def trained_detector(steps: int = 60) -> ForensicsModel:
    """A detector that separates the two kinds of crop (full tuning, AdamW, fixed seeds)."""
    torch.manual_seed(0)
    model = ForensicsModel(ModelConfig(SQUARE_BACKBONE, head="linear"))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = crops(32, seed=1000 + step, flattened=True)
        logits, _ = model.forward_head(model.backbone(batch.pixels))
        loss = torch.nn.functional.cross_entropy(logits, batch.labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()
