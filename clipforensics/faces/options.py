"""How faces are found and cut out of frames: the options every command shares, and the service too.

The fields of ``FaceOptions`` that users set are declared with ``face_option``: the one place that says an option's
name (``face_max_side``, ``--face-max-side`` on the command line), its default, the values it takes and its words.
The command line's options and the service's query options are made from ``FACE_OPTIONS`` and read their values
through ``FaceOption.parse``, so a new option, or a new default, is one edit here and both surfaces follow.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import OptionError, UsageError
from ..words import closest
from .align import RECIPES
from .detection import FaceDetector
from .detectors import BACKENDS, DEFAULT_BACKEND, DETECTORS, Search, create_face_detector

FACE_MODES = ("auto", "none")
DEFAULT_FACE_MODES = {"detect": "auto", "localize": "none"}
"""The face mode of each task unless one is asked for: detection scores aligned faces (as detectors are trained),
localization maps whole images (as DeCLIP reads them)."""
FACE_POLICIES = ("largest", "all", "mask")
SMALLEST_SEARCHABLE = 20
"""Below this, a face has too few pixels to be scored, whatever finds it (and searching for it would mean
enlarging the frame)."""
SMALLEST_SEARCH_SIDE = 64
YES, NO = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
"""How a query spells a yes/no option."""
OPTION = "option"
"""The key of a field's ``FaceOption`` in its metadata."""


@dataclass(frozen=True)
class FaceOption:
    """A field of ``FaceOptions`` as users give it: read from text and checked here, so that the command line and
    the service refuse a bad value in the same words (an ``OptionError`` naming the option)."""

    name: str
    """As a keyword and a query option; ``--face-max-side`` on the command line."""
    what: str
    """The option in words, as its refusal says it ("the face detector")."""
    help: str
    field_default: Any
    kind: type = str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    metavar: str | None = None
    flag: str | None = None
    """A yes/no option: yes sets the field to this value, no leaves its default (``all_faces``: policy ``all``)."""
    none_as: int | None = None
    """The option's value that stands for the field's None (``face_max_side`` 0: frames searched at full size)."""
    by_task: Mapping[str, Any] | None = None
    """The default of each task (detect, localize), where the task decides it."""
    served: bool = True
    """Offered by the service too; False for a file on the server, which a request must never name."""

    @property
    def default(self) -> Any:
        """The field's default, as the option says it."""
        return self.from_field(self.field_default)

    def default_for(self, task: str | None) -> Any:
        return self.by_task[task] if self.by_task is not None and task is not None else self.default

    def parse(self, value: Any) -> Any:
        """The option's value from a command line's or a query's text (or a value of its kind), checked."""
        if isinstance(value, str) and self.kind is int:
            try:
                value = int(value)
            except ValueError:
                raise self._refusal(value) from None
        elif isinstance(value, str) and self.kind is bool:
            if value.lower() not in YES + NO:
                raise OptionError(self.name, f"{self.what} is true or false, not {value!r}")
            value = value.lower() in YES
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        """Refuses a value outside the option's choices or range."""
        if self.choices and value not in self.choices:
            near = closest(str(value), self.choices)
            raise OptionError(self.name, f"{self.what} must be one of {', '.join(self.choices)}, not {value!r}"
                              + (f"; did you mean {near!r}?" if near else ""))
        if self.minimum is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                                           or value < self.minimum):
            raise self._refusal(value)

    def to_field(self, value: Any) -> Any:
        """The value of the ``FaceOptions`` field for the option's ``value``."""
        if self.flag is not None:
            return self.flag if value else self.field_default
        return None if self.none_as is not None and value == self.none_as else value

    def from_field(self, value: Any) -> Any:
        if self.flag is not None:
            return value == self.flag
        return self.none_as if value is None and self.none_as is not None else value

    def _refusal(self, value: Any) -> OptionError:
        return OptionError(self.name, f"{self.what} must be a whole number of at least {self.minimum}, not {value!r}")


def face_option(default: Any, name: str, what: str, help: str, **declared: Any) -> Any:
    """A field of ``FaceOptions`` with ``default``, which users set as the option ``name`` (see ``FaceOption``)."""
    return field(default=default, metadata={OPTION: FaceOption(name, what, help, default, **declared)})


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found and cut out. ``mode="none"``: every frame already is an aligned face crop."""

    mode: str = face_option("auto", "faces", "the face mode", "auto: find and align faces; none: the inputs are "
                            "already aligned face crops", choices=FACE_MODES, by_task=DEFAULT_FACE_MODES)
    backend: str = face_option(DEFAULT_BACKEND, "face_detector", "the face detector", "how faces are found",
                               choices=BACKENDS)
    model_path: str | None = face_option(None, "face_model", "the face model", "det_10g.onnx for --face-detector "
                                         "retinaface", metavar="ONNX", served=False)
    """The ONNX file for the retinaface backend."""
    policy: str = face_option("largest", "all_faces", "all_faces", "score every face of an image, not only the "
                              "largest (every face of a video is scored with --video-score people, the default)",
                              kind=bool, flag="all")
    recipe: str = face_option("deepfakebench", "align", "the alignment recipe", "five-point alignment recipe",
                              choices=RECIPES)
    crop_size: int | None = 256
    """Side of the aligned crop; None keeps the face's native size (GenD recipe)."""
    scale: float = 1.3
    max_side: int | None = face_option(None, "face_max_side", "the face search size", "search frames scaled "
                                       "down to this side: faster, misses faces below the smallest size at that "
                                       "scale; 0: full size", kind=int, minimum=0, none_as=0, metavar="PX")
    """Frames are searched for faces scaled down to at most this large (not retinaface, which has its own input
    size); None searches them at full size."""
    min_face: int | None = face_option(None, "face_min_size", "the smallest face size", "mtcnn: the smallest face "
                                       "searched for, in pixels of the searched frame; 0: 64 px, or 4 percent of "
                                       "the frame's short side where that is more", kind=int, minimum=0, none_as=0,
                                       metavar="PX")
    """The smallest face searched for (backends that take one: mtcnn); None: the backend's own."""

    def __post_init__(self) -> None:
        for key, option in _declared():
            option.check(option.from_field(getattr(self, key)))
        if self.policy not in FACE_POLICIES:
            raise UsageError(f"face policy must be one of {FACE_POLICIES}, not {self.policy!r}")
        if self.min_face is not None and self.min_face < SMALLEST_SEARCHABLE:
            raise OptionError("face_min_size", f"the smallest face size is 0 (automatic) or at least "
                              f"{SMALLEST_SEARCHABLE} px, not {self.min_face}")
        if self.max_side is not None and self.max_side < SMALLEST_SEARCH_SIDE:
            raise OptionError("face_max_side", f"the face search size is 0 (full size) or at least "
                              f"{SMALLEST_SEARCH_SIDE} px, not {self.max_side}")
        if self.min_face is not None and not DETECTORS[self.backend].min_face:
            raise OptionError("face_min_size", f"a smallest face size is for the mtcnn detector; {self.backend} "
                              "finds faces of a fixed size at the searched scale (a larger --face-max-side finds "
                              "smaller ones)")

    @classmethod
    def of(cls, given: Mapping[str, Any], task: str | None = None) -> FaceOptions:
        """The options ``given`` by their names (``{"face_max_side": 0}``), the others at their defaults (the
        ``task``'s where it decides)."""
        for name in given:
            if name not in FACE_OPTIONS:
                near = closest(name, FACE_OPTIONS)
                raise OptionError(name, f"{name!r} is no face option" + (f"; did you mean {near!r}?" if near else ""))
        return cls(**{key: option.to_field(given.get(option.name, option.default_for(task)))
                      for key, option in _declared()})

    def settings(self) -> dict[str, Any]:
        """Every field, the options' by their names and values (``FACE_OPTIONS``), the others by their own: what a
        run records of how its faces were found and cut out."""
        return {OPTION_OF[declared.name].name if declared.name in OPTION_OF else declared.name:
                OPTION_OF[declared.name].from_field(getattr(self, declared.name)) if declared.name in OPTION_OF
                else getattr(self, declared.name) for declared in fields(self)}

    @property
    def search(self) -> Search:
        return Search(self.max_side, self.min_face)

    def smallest_face(self, height: int, width: int) -> float:
        """The smallest face searched for in a frame of this size, in its pixels."""
        return DETECTORS[self.backend].smallest(height, width, self.search)

    def searched(self, height: int, width: int) -> str:
        """How frames of this size are searched, and what would search them for smaller faces, in words (options
        as on the command line)."""
        scale = self.search.scale(height, width)
        at = f"scaled to {round(width * scale)}x{round(height * scale)}" if scale < 1 else "at full size"
        smallest = self.smallest_face(height, width)
        said = f"searched {width}x{height} {at} with {self.backend} for faces of {round(smallest)} px and more"
        advice = []
        if scale < 1:
            advice.append("--face-max-side 0 searches at full size")
        if DETECTORS[self.backend].min_face and smallest * scale > SMALLEST_SEARCHABLE:
            size = max(SMALLEST_SEARCHABLE, round(smallest * scale / 2))
            advice.append(f"--face-min-size {size} looks for faces down to {size} px, slower")
        if self.backend != DEFAULT_BACKEND:
            advice.append(f"--face-detector {DEFAULT_BACKEND} finds smaller and turned faces")
        return "; ".join([said, *advice])

    def create_detector(self, landmarks68: bool = False) -> FaceDetector | None:
        """The detector these options ask for (None for ``mode="none"``); ``landmarks68``: its faces carry
        dlib's 68 points."""
        if self.mode != "auto":
            return None
        return create_face_detector(self.backend, self.model_path, self.search, landmarks68)


def _declared() -> list[tuple[str, FaceOption]]:
    """The fields of ``FaceOptions`` that users set, by their keywords, with their options."""
    return [(declared.name, declared.metadata[OPTION]) for declared in fields(FaceOptions)
            if OPTION in declared.metadata]


FACE_OPTIONS: dict[str, FaceOption] = {option.name: option for _, option in _declared()}
"""The face options by name, in the order the command line lists them."""
OPTION_OF: dict[str, FaceOption] = dict(_declared())
"""The face options by the keyword of their field."""


def in_query_words(text: str) -> str:
    """``text`` (an error or a note, which name options as the command line does) with the face options named as
    the service's query options: ``--face-max-side 0`` becomes ``face_max_side=0``."""
    for name, option in FACE_OPTIONS.items():
        value = r"\d+" if option.kind is int else "|".join(map(re.escape, option.choices)) or None
        pattern = rf"--{name.replace('_', '-')}\b" + (rf"(?: ({value})\b)?" if value else "")
        text = re.sub(pattern, lambda match, name=name: name + (f"={match[1]}" if value and match[1] else ""), text)
    return text

