"""The one colour for real and for fake, in every picture: boxes drawn on inputs, the reports' plots and the
web page's."""

from __future__ import annotations

FAKE = (230, 40, 40)
REAL = (40, 200, 60)
UNDECIDED = (110, 110, 110)
"""A verdict that is neither: no face, or an error."""


def of_label(label: int | str) -> tuple[int, int, int]:
    """RGB 0-255 of a label: 1 or "fake", 0 or "real"."""
    return FAKE if label in (1, "fake") else REAL


def for_matplotlib(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    r, g, b = (channel / 255 for channel in colour)
    return r, g, b
