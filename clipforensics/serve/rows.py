"""Results as the service answers them: the rows ``clipforensics detect`` and ``localize`` write (built by
``inference.rows``), with each input's path (and any mention of it in an error or a note) shown as the client's
file name, never as a path on the server, options named as the service takes them, map files and explanation
files as URLs, and each person of a detection row with their face (``rows.PERSON_FACE``), for the page to show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from ..faces.options import in_query_words
from ..inference.calibration import Decision
from ..inference.predictor import Predictor
from ..inference.provenance import RUN
from ..inference.results import Result
from ..inference.rows import detection_row, localization_row
from ..inference.verdicts import INSUFFICIENT
from .options import RequestOptions


def run_of(predictor: Predictor, task: str, options: RequestOptions, face_model: Path | None = None) -> dict:
    """The header's ``run`` of a request (``inference.provenance``): the model, device, precision, and every option
    of the request that changes a score, its decision included."""
    settings = options.predict_options(task, face_model)
    return predictor.run_header(options.decision(predictor), **settings)[RUN]


def predict_rows(predictor: Predictor, task: str, inputs: list[tuple[str, Path]], options: RequestOptions,
                 maps: Path | None = None, url: Callable[[str], str] | None = None,
                 face_model: Path | None = None) -> Iterator[dict]:
    """One row per input (``(name, stored path)``), in order, as each finishes. ``localize`` writes each
    input's mask and overlay into ``maps`` (an explained ``detect``, each face's explanation) and gives them as
    ``url(path)``. ``face_model``: the server's."""
    settings = options.predict_options(task, face_model)
    if task == "localize":
        settings["save_maps"] = maps
    if options.explain:
        settings["save_explanations"] = maps
    decision = options.decision(predictor)
    results = predictor.iter_predict([path for _, path in inputs], **settings)
    for (name, path), result in zip(inputs, results):
        shown = _as_uploaded(result, name, path, decision, url or str)
        yield detection_row(shown, faces=True) if task == "detect" else localization_row(shown, url or str)


def _as_uploaded(result: Result, name: str, stored: Path, decision: Decision, url: Callable[[str], str]) -> Result:
    """The result under the client's name, it and its people labelled as ``decision`` says (a video with too little
    evidence stays ``insufficient``), its faces' explanation files as ``url(path)``."""
    label = result.label if result.p_fake is None or result.label == INSUFFICIENT else decision.label(result.p_fake)
    decided_by = result.decided_by if result.p_fake is None else decision.name
    people = [person if person.p_fake is None else replace(person, label=decision.label(person.p_fake))
              for person in result.people]
    frames = [replace(frame, faces=[face if face.explanation_file is None else
                                    replace(face, explanation_file=url(face.explanation_file)) for face in frame.faces])
              for frame in result.frames]
    return replace(result, path=name, label=label, decided_by=decided_by, people=people, frames=frames,
                   error=None if result.error is None else as_uploaded(result.error, name, stored, result.path),
                   notes=[as_uploaded(note, name, stored, result.path) for note in result.notes])


def as_uploaded(text: str, name: str, stored: Path, given: str | None = None) -> str:
    """``text`` with each spelling of the stored path (and ``given``, the path the predictor was given) as the
    client's ``name``, and the CLI's options named as the service takes them."""
    spellings = sorted({str(stored), str(stored.resolve())} | ({given} if given else set()), key=len, reverse=True)
    for spelling in spellings:
        text = text.replace(spelling, name)
    return in_query_words(text)
