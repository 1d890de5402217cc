"""A detector's calibration, carried in its ``config.json``: a temperature on the logit of p_fake, and the
operating thresholds fitted on a user's validation data (``clipforensics calibrate``).

The calibrated score of a frame is ``sigmoid(logit(p_raw) / T)``; a video's is the aggregate of its frames'
calibrated scores. A label is decided by an operating point: a named threshold fitted with the temperature
(``eer``, ``fpr@1%``, ``f1``), or a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError, OptionError

CONFIG_KEY = "calibration"
"""Where a model folder's ``config.json`` holds its calibration."""
EPSILON = 1e-7
"""Raw scores are clipped to [EPSILON, 1 - EPSILON] before the logit, so that 0 and 1 stay finite."""


@dataclass(frozen=True)
class Calibration:
    temperature: float
    level: str = "video"
    aggregate: str = "mean"
    thresholds: dict[str, float] = field(default_factory=dict)
    operating_point: str = "eer"
    fitted_on: dict = field(default_factory=dict)

    def apply(self, p_raw: float) -> float:
        """The calibrated score of one raw p_fake."""
        p = min(max(p_raw, EPSILON), 1 - EPSILON)
        tempered = math.log(p / (1 - p)) / self.temperature
        if tempered >= 0:  # the sigmoid written so that exp never overflows, however small the temperature
            return 1 / (1 + math.exp(-tempered))
        return math.exp(tempered) / (1 + math.exp(tempered))

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "level": self.level, "aggregate": self.aggregate,
                "thresholds": dict(self.thresholds), "operating_point": self.operating_point,
                "fitted_on": dict(self.fitted_on)}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(float(data["temperature"]), data.get("level", "video"), data.get("aggregate", "mean"),
                   {k: float(v) for k, v in data.get("thresholds", {}).items()},
                   data.get("operating_point", "eer"), data.get("fitted_on", {}))


def read_calibration(path: str | Path) -> Calibration | None:
    """The calibration a model folder carries in its ``config.json`` (``clipforensics calibrate``), if any."""
    from ..hub.checkpoints import CONFIG_FILE, own_config

    data = (own_config(path) or {}).get(CONFIG_KEY)
    try:
        return Calibration.from_dict(data) if data else None
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{Path(path) / CONFIG_FILE}: its calibration cannot be read ({error})") from None


@dataclass(frozen=True)
class Band:
    """Scores in [low, high) are labelled uncertain; 0 <= low <= high <= 1."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high <= 1:
            raise _not_a_band(f"{self.low:g}:{self.high:g}")

    def __contains__(self, p_fake: float) -> bool:
        return self.low <= p_fake < self.high

    @classmethod
    def parse(cls, text: str) -> Band:
        """``LOW:HIGH``, as the command line and the service take it."""
        try:
            low, high = (float(part) for part in text.split(":"))
        except ValueError:
            raise _not_a_band(repr(text)) from None
        return cls(low, high)


def _not_a_band(given: str) -> OptionError:
    return OptionError("uncertain", f"the uncertain band must be LOW:HIGH with 0 <= LOW <= HIGH <= 1 (e.g. 0.3:0.7), "
                                    f"not {given}")


def decision_settings(threshold: float | None, operating_point: str | None, uncertain: Band | None) -> dict:
    """A decision as a run records it, by the options that ask for it (``--threshold`` / ``--operating-point``,
    ``--uncertain``): resolved (``Decision.settings``), or as given where no model is loaded to resolve them."""
    return {"threshold": threshold, "operating_point": operating_point,
            "uncertain": None if uncertain is None else [uncertain.low, uncertain.high]}


@dataclass(frozen=True)
class Decision:
    """How a score becomes a label: at or above ``threshold`` fake, below real; inside ``uncertain`` neither.
    ``name`` says which operating point decided (``eer``, ``0.5``, ...)."""

    threshold: float
    name: str
    uncertain: Band | None = None

    def settings(self) -> dict:
        """The decision as the options that ask for it (``decision_settings``)."""
        return decision_settings(self.threshold, self.name, self.uncertain)

    def label(self, p_fake: float) -> str:
        if self.uncertain is not None and p_fake in self.uncertain:
            return "uncertain"
        return "fake" if p_fake >= self.threshold else "real"


def operating_point_of(threshold: float | None, operating_point: str | float | None) -> str | float | None:
    """The one operating point asked for: a threshold is an operating point given as a number."""
    if threshold is not None and operating_point is not None:
        raise OptionError("operating_point", "give a threshold or an operating point, not both")
    return operating_point if operating_point is not None else threshold


def decision(calibration: Calibration | None, operating_point: str | float | None = None,
             uncertain: Band | tuple[float, float] | None = None, default: float = 0.5) -> Decision:
    """The operating point asked for (a threshold name of the calibration, or a number), else the
    calibration's own, else ``default``; ``uncertain``: a band, or its (low, high)."""
    if uncertain is not None and not isinstance(uncertain, Band):
        uncertain = Band(*uncertain)
    chosen = operating_point if operating_point is not None else (
        calibration.operating_point if calibration is not None else None)
    if chosen is None:
        return Decision(default, f"{default:g}", uncertain)
    try:
        value = float(chosen)
    except (TypeError, ValueError):
        thresholds = calibration.thresholds if calibration is not None else {}
        if chosen not in thresholds:
            known = ", ".join(thresholds) or "none: this model is not calibrated (clipforensics calibrate)"
            raise OptionError("operating_point",
                              f"operating point {chosen!r} is not one of this model's ({known}), nor a number")
        return Decision(thresholds[chosen], str(chosen), uncertain)
    if not 0 <= value <= 1:
        raise OptionError("operating_point",
                          f"an operating point given as a number must be in [0, 1], not {value}")
    return Decision(value, f"{value:g}", uncertain)
