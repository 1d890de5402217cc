"""``evaluate`` on Ray: samples through ``predict_samples`` on the model replicas of ``inference.ray_engine``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..inference.ray_engine import Model, RayOptions, connected, run
from .predictions import EXAMPLES, MapPrediction, Prediction, predict_samples

if TYPE_CHECKING:
    from ..data.manifest import Sample
    from ..inference.predictor import Predictor
    from .perturbations import Perturbation


@dataclass(frozen=True)
class ScoreSamples:
    """A replica's work for ``evaluate``: samples through ``predict_samples``, a ``Prediction`` (or
    ``MapPrediction``) each."""

    samples: list[Sample]
    task: str = "detection"
    perturb: Perturbation | None = None

    def __call__(self, predictor: Predictor, numbers: list[int]) -> list:
        return predict_samples(predictor, [self.samples[number] for number in numbers], self.task, self.perturb,
                               progress=False)

    def failed(self, number: int, error: str) -> Any:
        sample = self.samples[number]
        common = {"path": sample.path, "dataset": sample.dataset, "source": sample.source, "label": sample.label}
        if self.task == "detection":
            return Prediction(**common, video=sample.video, p_fake=None, error=error)
        return MapPrediction(**common, score=None, error=error)


def predict_samples_on_ray(model: Model, samples: list[Sample], task: str, perturb: Perturbation | None,
                           options: RayOptions) -> tuple[list, dict]:
    """``evaluate``'s rows on Ray, in sample order, as ``predict_samples`` gives them in one process (the
    first ``EXAMPLES`` masked fakes carry their maps), and the model's provenance."""
    rows: dict[int, Any] = {}
    with connected(options.address):
        provenance = run(model, ScoreSamples(samples, task, perturb), range(len(samples)), options, rows.update,
                         desc="evaluate").get("provenance", {})
    ordered = [rows[number] for number in range(len(samples))]
    shown = [index for index, row in enumerate(ordered) if getattr(row, "example", None) is not None]
    for index in shown[EXAMPLES:]:
        ordered[index] = replace(ordered[index], example=None)
    return ordered, provenance
