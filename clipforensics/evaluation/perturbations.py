"""Degradations of the decoded image before the model's preprocessing, as GenD's robustness study applies
them (JPEG quality, Gaussian blur, downscaling)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..data.augment import gaussian_blur, jpeg
from ..errors import UsageError

PERTURBATION_HELP = "jpeg:Q (quality 1-100), blur:K,S (odd kernel K, sigma S > 0) or resize:P (percent, 0 < P <= 100)"


@dataclass(frozen=True)
class Perturbation:
    """A degradation of the decoded image (uint8 RGB [H, W, 3]) before preprocessing.

    ``jpeg:Q``: JPEG re-encoding at quality Q (PIL, 4:2:0). ``blur:K,S``: Gaussian blur, K x K kernel,
    sigma S, reflected border (torchvision's kernel, as in training). ``resize:P``: downscaled to P
    percent of each side and back to the original size, PIL bilinear both ways.
    """

    kind: str
    values: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> Perturbation:
        kind, _, arguments = spec.partition(":")
        try:
            values = tuple(float(v) for v in arguments.split(","))
        except ValueError:
            raise UsageError(f"perturbation must be {PERTURBATION_HELP}, not {spec!r}") from None
        perturbation = cls(kind, values)
        if not perturbation._valid():
            raise UsageError(f"perturbation must be {PERTURBATION_HELP}, not {spec!r}")
        return perturbation

    def _valid(self) -> bool:
        if self.kind == "jpeg":
            return len(self.values) == 1 and self.values[0].is_integer() and 1 <= self.values[0] <= 100
        if self.kind == "blur":
            kernel, sigma = self.values if len(self.values) == 2 else (0.0, 0.0)
            return kernel.is_integer() and kernel >= 1 and kernel % 2 == 1 and sigma > 0
        if self.kind == "resize":
            return len(self.values) == 1 and 0 < self.values[0] <= 100
        return False

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{v:g}' for v in self.values)}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.kind == "jpeg":
            return jpeg(image, int(self.values[0]))
        if self.kind == "blur":
            return gaussian_blur(image, int(self.values[0]), self.values[1])
        height, width = image.shape[:2]
        small = (max(1, round(width * self.values[0] / 100)), max(1, round(height * self.values[0] / 100)))
        resized = Image.fromarray(image).resize(small, Image.Resampling.BILINEAR)
        return np.asarray(resized.resize((width, height), Image.Resampling.BILINEAR))
