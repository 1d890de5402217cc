"""The query options of /v1/detect, /v1/localize and /v1/jobs, validated (422 in the one error shape) and
turned into the predictor's options. They are kept with a job, so a job run again after a restart runs as
it was asked."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import Query, Request

from ..errors import OptionError
from ..faces.options import DEFAULT_FACE_MODES, FACE_MODES, FaceOptions
from ..inference.calibration import Band, Decision, decision, operating_point_of
from ..media import DEFAULT_FRAMES, Sampler
from ..metrics import AGGREGATES
from .errors import invalid_options

TASKS = ("detect", "localize")
SamplerKind = Literal[Sampler.KINDS]  # type: ignore[valid-type]
Aggregate = Literal[AGGREGATES]  # type: ignore[valid-type]
FaceMode = Literal[FACE_MODES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class RequestOptions:
    """What a request asks of the predictor; ``faces`` and ``threshold`` None: the task's and the model's."""

    frames: int = DEFAULT_FRAMES
    sampler: str = "uniform"
    stride: int | None = None
    aggregate: str = "mean"
    all_faces: bool = False
    faces: str | None = None
    threshold: float | None = None
    operating_point: str | None = None
    uncertain: str | None = None
    """LOW:HIGH: scores in [LOW, HIGH) are labelled uncertain."""

    def __post_init__(self) -> None:
        with self._refusals():
            operating_point_of(self.threshold, self.operating_point)
        self.sampler_of()
        self.band()

    def band(self) -> Band | None:
        """``uncertain`` as a ``Band``."""
        with self._refusals():
            return Band.parse(self.uncertain) if self.uncertain is not None else None

    def decision(self, predictor) -> Decision:
        """How this request's scores become labels: its threshold or operating point, else the model's."""
        if self.threshold is None and self.operating_point is None and self.uncertain is None:
            return predictor.decision
        with self._refusals():
            return decision(predictor.calibration, operating_point_of(self.threshold, self.operating_point),
                            self.band())

    def sampler_of(self) -> Sampler:
        with self._refusals():
            return Sampler.of(self.sampler, self.frames, self.stride)

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """An option refused by the type that owns it is a 422 naming that option's field."""
        try:
            yield
        except OptionError as error:
            raise invalid_options([{"field": error.option, "message": str(error),
                                    "input": getattr(self, error.option)}]) from None

    def predict_options(self, task: str) -> dict[str, Any]:
        """Keyword arguments of ``Predictor.iter_predict`` (faces default: the task's)."""
        mode = self.faces or DEFAULT_FACE_MODES[task]
        faces = FaceOptions(mode=mode, policy="all" if self.all_faces else "largest")
        return {"faces": faces, "frames": self.sampler_of(), "aggregate_by": self.aggregate, "progress": False}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestOptions:
        return cls(**data)


def _face_defaults() -> str:
    return ", ".join(f"{mode} to {task}" for task, mode in DEFAULT_FACE_MODES.items())


def request_options(
    request: Request,
    frames: Annotated[int, Query(ge=1, le=100_000, description="frames sampled per video (uniform, spread)")]
    = DEFAULT_FRAMES,
    sampler: Annotated[SamplerKind, Query(description="uniform: `frames` spread evenly; stride: every `stride`-th "
                                                      "frame; spread: GenD's order; all: every frame")] = "uniform",
    stride: Annotated[int | None, Query(ge=1, description="with sampler=stride: keep every N-th frame")] = None,
    aggregate: Annotated[Aggregate, Query(description="a video's p_fake from its frames'")] = "mean",
    all_faces: Annotated[bool, Query(description="score every face, not only the largest")] = False,
    faces: Annotated[FaceMode | None, Query(description="auto: find and align faces; none: the files are aligned "
                                                        f"face crops (default: {_face_defaults()})")] = None,
    threshold: Annotated[float | None, Query(ge=0, le=1, description="p_fake at or above which the label is fake "
                                                                     "(default: the model's operating point)")] = None,
    operating_point: Annotated[str | None, Query(description="a calibrated model's threshold by name (eer, fpr@1%, "
                                                             "f1) or a number")] = None,
    uncertain: Annotated[str | None, Query(description="LOW:HIGH: scores in [LOW, HIGH) are labelled "
                                                       "uncertain")] = None,
) -> RequestOptions:
    known = {"frames", "sampler", "stride", "aggregate", "all_faces", "faces", "threshold", "operating_point",
             "uncertain"}
    _refuse_unknown(request, known | ({"task"} if request.url.path.endswith("/jobs") else set()))
    return RequestOptions(frames, sampler, stride, aggregate, all_faces, faces, threshold, operating_point, uncertain)


Task = Literal[TASKS]  # type: ignore[valid-type]


def task_option(task: Annotated[Task, Query(description="what the job does")] = "detect") -> str:
    return task


def _refuse_unknown(request: Request, known: set[str]) -> None:
    """A misspelt option is an error naming the closest one, not silently ignored."""
    problems = []
    for name in request.query_params:
        if name not in known:
            closest = difflib.get_close_matches(name, known, 1)
            problems.append({"field": name, "input": request.query_params[name],
                             "message": "unknown option" + (f"; did you mean {closest[0]!r}?" if closest else "")})
    if problems:
        raise invalid_options(problems)
