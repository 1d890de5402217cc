"""The detection report's example faces, each with its explanation: the frames the detector called most fake,
fakes and reals alike (its surest calls, and its worst false alarms), so that a reader sees beside each score where
the detector looked for it. One explain pass over the shown frames alone, after the whole set is scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import MediaError
from ..inference.results import EXPLAINS
from ..media import load_image
from .perturbations import Perturbation
from .predictions import Model, Prediction

SHOWN = 6
"""Example faces in a detection report: half of them fakes, half reals (fewer when a class has fewer)."""


@dataclass(frozen=True)
class ExplainedExample:
    """A scored frame as the model saw it, with where the detector looked for its score."""

    path: str
    label: int
    p_fake: float
    """The run's score of the frame."""
    overlay: np.ndarray
    """uint8 [size, size, 3]: the model's input crop under its explanation's heatmap (``inference.drawing``)."""
    explains: str
    """Which score the map explains: ``"fake"`` or ``"real"``, the head's own call (``FaceResult.explains``)."""


def most_fake(rows: Sequence[Prediction], count: int = SHOWN) -> list[Prediction]:
    """The ``count // 2`` fakes and the ``count // 2`` reals with the highest p_fake, each class in that order."""
    scored = sorted((row for row in rows if row.p_fake is not None), key=lambda row: -row.p_fake)
    return [row for label in (1, 0) for row in [row for row in scored if row.label == label][: count // 2]]


def explained_examples(predictor: Model, rows: Sequence[Prediction],
                       perturb: Perturbation | None = None) -> list[ExplainedExample]:
    """``most_fake(rows)`` explained (read and perturbed as they were scored); none for a model without a head,
    which has no score to explain, or a frame that can no longer be read."""
    import cv2
    from PIL import Image

    from ..inference.drawing import overlay
    from ..transforms import preprocess, resize_and_crop

    if not predictor.has_head:
        return []
    shown, images = [], []
    for row in most_fake(rows):
        try:
            image = np.asarray(load_image(row.path))
        except (MediaError, OSError):
            continue
        shown.append(row)
        images.append(perturb(image) if perturb else image)
    if not shown:
        return []
    prep = predictor.preprocessing
    _, maps, toward_fake = predictor.explain_batch(preprocess(images, prep))
    examples = []
    for row, image, explanation, side in zip(shown, images, maps.numpy(), toward_fake.tolist()):
        crop = np.clip(np.rint(resize_and_crop(Image.fromarray(image), prep)), 0, 255).astype(np.uint8)
        relevance = cv2.resize(explanation, crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        examples.append(ExplainedExample(row.path, row.label, row.p_fake, overlay(crop, relevance), EXPLAINS[side]))
    return examples
