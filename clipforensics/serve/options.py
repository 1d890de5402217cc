"""The query options of /v1/detect, /v1/localize and /v1/jobs, validated (422 in the one error shape) and
turned into the predictor's options. The face options are the command line's (``FACE_OPTIONS``), read and checked
by the same code, except the face model: a file on the server, which only the server names (``serve --face-model``).
They are kept with a job, so a job run again after a restart runs as it was asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Query, Request

from ..errors import OptionError
from ..faces.detectors import DETECTORS
from ..faces.options import FACE_OPTIONS, FaceOption, FaceOptions
from ..inference.calibration import Band, Decision, decision, operating_point_of
from ..inference.verdicts import VIDEO_SCORES, VideoRule
from ..media import DEFAULT_FRAMES, Sampler
from ..metrics import AGGREGATES
from ..words import closest
from .errors import invalid_options

TASKS = ("detect", "localize")
SamplerKind = Literal[Sampler.KINDS]  # type: ignore[valid-type]
Aggregate = Literal[AGGREGATES]  # type: ignore[valid-type]
VideoScore = Literal[VIDEO_SCORES]  # type: ignore[valid-type]
SERVED = {name: option for name, option in FACE_OPTIONS.items() if option.served}
"""The face options a request may give."""


@dataclass(frozen=True)
class RequestOptions:
    """What a request asks of the predictor; ``threshold`` None: the model's."""

    frames: int = DEFAULT_FRAMES
    sampler: str = "uniform"
    stride: int | None = None
    aggregate: str = "mean"
    face_options: dict[str, Any] = field(default_factory=dict)
    """The face options the request gave, by name (``{"face_max_side": 0}``); the others are the task's defaults."""
    threshold: float | None = None
    operating_point: str | None = None
    uncertain: str | None = None
    """LOW:HIGH: scores in [LOW, HIGH) are labelled uncertain."""
    video_score: str = "people"
    min_person_frames: int | None = None
    min_face_frames: int = 4
    explain: bool = False
    """Each face of a detect row names its explanation's file (``Predictor.iter_predict(explain=...)``)."""

    def __post_init__(self) -> None:
        with self._refusals():
            operating_point_of(self.threshold, self.operating_point)
            VideoRule(self.video_score, self.min_person_frames, self.min_face_frames)
        self.faces()
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

    def faces(self, task: str | None = None, face_model: Path | None = None) -> FaceOptions:
        """The request's face options for ``task``, with the server's face model (never one a request names)."""
        with self._refusals():
            return FaceOptions.of({**self.face_options, "face_model": str(face_model) if face_model else None}, task)

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """An option refused by the type that owns it is a 422 naming that option's field."""
        try:
            yield
        except OptionError as error:
            given = self.face_options.get(error.option, getattr(self, error.option, None))
            raise invalid_options([{"field": error.option, "message": str(error), "input": given}]) from None

    def predict_options(self, task: str, face_model: Path | None = None) -> dict[str, Any]:
        """Keyword arguments of ``Predictor.iter_predict``."""
        return {"faces": self.faces(task, face_model), "frames": self.sampler_of(), "aggregate_by": self.aggregate,
                "video_score": self.video_score, "min_person_frames": self.min_person_frames,
                "min_face_frames": self.min_face_frames, "progress": False}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestOptions:
        return cls(**data)


def face_defaults(task: str) -> dict[str, Any]:
    """What a request for ``task`` takes unless it gives a face option."""
    return {name: option.default_for(task) for name, option in SERVED.items()}


def request_options(face_detectors: tuple[str, ...]) -> Callable[..., RequestOptions]:
    """The dependency that reads a request's options; ``face_detectors``: the detectors this server offers."""

    def read(
        request: Request,
        frames: Annotated[int, Query(ge=1, le=100_000, description="frames sampled per video (uniform, spread)")]
        = DEFAULT_FRAMES,
        sampler: Annotated[SamplerKind, Query(description="uniform: `frames` spread evenly; stride: every "
                                                          "`stride`-th frame; spread: GenD's order; all: every "
                                                          "frame")] = "uniform",
        stride: Annotated[int | None, Query(ge=1, description="with sampler=stride: keep every N-th frame")] = None,
        aggregate: Annotated[Aggregate, Query(description="a person's p_fake from their faces' (video_score="
                                                          "largest: a video's from its frames')")] = "mean",
        video_score: Annotated[VideoScore, Query(description="people: a video's p_fake is the highest of its "
                                                             "people's, every face scored; largest: from its "
                                                             "frames' largest face (the papers' rule)")] = "people",
        min_person_frames: Annotated[int | None, Query(ge=1, description="people seen in fewer sampled frames do "
                                                                         "not decide a video (default: 4, or 25% "
                                                                         "of the frames with a face)")] = None,
        min_face_frames: Annotated[int, Query(ge=1, description="a video with a face in fewer sampled frames is "
                                                                "labelled insufficient")] = 4,
        threshold: Annotated[float | None, Query(ge=0, le=1, description="p_fake at or above which the label is "
                                                                         "fake (default: the model's operating "
                                                                         "point)")] = None,
        operating_point: Annotated[str | None, Query(description="a calibrated model's threshold by name (eer, "
                                                                 "fpr@1%, f1) or a number")] = None,
        uncertain: Annotated[str | None, Query(description="LOW:HIGH: scores in [LOW, HIGH) are labelled "
                                                           "uncertain")] = None,
        explain: Annotated[bool, Query(description="detect: each face of the detail names its `explanation`, the "
                                                   "URL of a PNG of where the detector looked for the score its "
                                                   "call rests on (gradient-weighted attention rollout, 8-bit grey "
                                                   "over the model's input crop), and `explains`, that call: "
                                                   "`fake` or `real`; 409 when the model has no head")] = False,
    ) -> RequestOptions:
        known = {"frames", "sampler", "stride", "aggregate", "threshold", "operating_point", "uncertain", "video_score",
                 "min_person_frames", "min_face_frames", "explain", *SERVED}
        refuse_unknown(request, known | ({"task"} if request.url.path.endswith("/jobs") else set()))
        return RequestOptions(frames, sampler, stride, aggregate, _face_options(request.query_params, face_detectors),
                              threshold, operating_point, uncertain, video_score, min_person_frames, min_face_frames,
                              explain)

    return read


def _face_options(query: Mapping[str, str], face_detectors: tuple[str, ...]) -> dict[str, Any]:
    """The face options given in ``query``, each read by its option; every refusal is answered at once."""
    given, problems = {}, []
    for name, option in SERVED.items():
        if name in query:
            try:
                given[name] = option.parse(query[name])
                if name == "face_detector":
                    _check_offered(given[name], face_detectors)
            except OptionError as error:
                problems.append({"field": name, "message": str(error), "input": query[name]})
    if problems:
        raise invalid_options(problems)
    return given


def _check_offered(face_detector: str, face_detectors: tuple[str, ...]) -> None:
    if face_detector not in face_detectors:
        raise OptionError("face_detector", f"{face_detector} needs its model file, "
                                           f"{DETECTORS[face_detector].model_file}, which this server was not "
                                           "started with (clipforensics serve --face-model); choose one of "
                                           f"{', '.join(face_detectors)}")


def face_parameters(face_detectors: tuple[str, ...]) -> list[dict[str, Any]]:
    """The face options as OpenAPI query parameters (the face detectors: those this server offers)."""
    return [{"name": name, "in": "query", "required": False, "description": _description(option),
             "schema": _schema(option, face_detectors if name == "face_detector" else option.choices)}
            for name, option in SERVED.items()]


def _description(option: FaceOption) -> str:
    if option.by_task is None:
        return option.help
    return f"{option.help} (default: {', '.join(f'{value} to {task}' for task, value in option.by_task.items())})"


def _schema(option: FaceOption, choices: tuple[str, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": {bool: "boolean", int: "integer", str: "string"}[option.kind]}
    if choices:
        schema["enum"] = list(choices)
    if option.minimum is not None:
        schema["minimum"] = option.minimum
    if option.by_task is None:
        schema["default"] = option.default
    return schema


Task = Literal[TASKS]  # type: ignore[valid-type]


def task_option(task: Annotated[Task, Query(description="what the job does")] = "detect") -> str:
    return task


def refuse_unknown(request: Request, known: set[str]) -> None:
    """A misspelt option is an error naming the closest one, not silently ignored; a server's option (the face
    model) is refused with where it is set."""
    problems = []
    for name in request.query_params:
        if name in known:
            continue
        if name in FACE_OPTIONS:
            message = f"set when the server starts (clipforensics serve --{name.replace('_', '-')}), not by a request"
        else:
            near = closest(name, known)
            message = "unknown option" + (f"; did you mean {near!r}?" if near else "")
        problems.append({"field": name, "input": request.query_params[name], "message": message})
    if problems:
        raise invalid_options(problems)
