"""The models the service loaded, each with its own worker threads: inference runs off the event loop, one
request or job at a time per model (``--jobs N``: N at a time). A joint model loaded alone serves both
roles, detector and localizer, on the same threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..faces.detectors import DETECTORS
from ..inference.predictor import Predictor
from ..media import DEFAULT_FRAMES
from .errors import ApiError, invalid_options
from .options import face_defaults


@dataclass
class Runner:
    name: str
    """As given to --model / --localizer."""
    predictor: Predictor
    jobs: int = 1
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="model")

    def describe(self) -> dict:
        predictor = self.predictor
        return {"name": self.name, "kind": predictor.config.kind, "has_head": predictor.has_head,
                "has_decoder": predictor.has_decoder, "backbone": predictor.config.backbone.to_dict(),
                "provenance": predictor.provenance, "preprocessing": predictor.preprocessing.to_dict(),
                "threshold": predictor.threshold, "operating_point": predictor.decision.name,
                "calibration": predictor.calibration.to_dict() if predictor.calibration else None,
                "device": str(predictor.device), "precision": predictor.precision, "identity": predictor.identity}


class Runners:
    """``detector``: the --model (any model scores p_fake); ``localizer``: the --localizer, else the --model
    when it has a decoder, else none; ``face_model``: the --face-model, the file of the face detector that needs one
    (retinaface). ``face_detectors``: those requests may ask for, the ones that need no file and, with the file,
    the one that reads it."""

    def __init__(self, detector: Runner, localizer: Runner | None = None, face_model: Path | None = None):
        self.detector = detector
        self.localizer = localizer or (detector if detector.predictor.has_decoder else None)
        self.face_model = face_model
        self.face_detectors = tuple(name for name, backend in DETECTORS.items()
                                    if backend.model_file is None or face_model is not None)

    def for_task(self, task: str, explain: bool = False) -> Runner:
        """The runner of ``task``; with ``explain``, one whose scores can be explained: detect's, when its model has
        a head (409 when it has none; 422 for localize, whose rows have no faces' scores)."""
        if task == "detect":
            if explain:
                try:
                    self.detector.predictor.config.require_head(f"explain with the model {self.detector.name!r}")
                except UsageError as refused:
                    raise ApiError(409, "no score to explain", str(refused)) from None
            return self.detector
        if explain:
            raise invalid_options([{"field": "explain", "input": True, "message": "explanations are of the faces' "
                                    "scores, which detect gives: ask detect (task=detect), not localize"}])
        if self.localizer is None:
            try:
                self.detector.predictor.config.require_decoder(f"localize with the model {self.detector.name!r}")
            except UsageError as refused:
                raise ApiError(409, "no localizer loaded", f"{refused}; start the service with one as --localizer") \
                    from None
        return self.localizer

    def describe(self) -> dict:
        """Each loaded role's model, with what its task takes when a request gives none: the face options
        (``faces``, the face mode; ``face_detector``, ...) and ``frames`` (sampled per video)."""
        roles = (("detector", "detect", self.detector), ("localizer", "localize", self.localizer))
        return {role: {**runner.describe(), **face_defaults(task), "frames": DEFAULT_FRAMES}
                for role, task, runner in roles if runner is not None}

    def shutdown(self) -> None:
        for runner in {id(runner): runner for runner in (self.detector, self.localizer) if runner}.values():
            runner.executor.shutdown(wait=True, cancel_futures=True)
