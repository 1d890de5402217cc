"""The one colour for real and for fake, in every picture: boxes drawn on inputs, the reports' plots and the
web page's."""

from __future__ import annotations

FAKE = (230, 40, 40)
REAL = (40, 200, 60)
UNDECIDED = (110, 110, 110)
"""A verdict that is neither: no face, or an error."""


PEOPLE = ((40, 110, 230), (240, 150, 20), (150, 60, 200), (20, 190, 200), (220, 60, 170), (200, 190, 30),
          (120, 80, 40), (90, 90, 160))
"""A person's colour in a video's pictures, by id (the palette repeats past eight); neither red nor green, which
say fake and real."""


def of_person(id: int) -> tuple[int, int, int]:
    return PEOPLE[id % len(PEOPLE)]


def of_label(label: int | str) -> tuple[int, int, int]:
    """RGB 0-255 of a label: 1 or "fake", 0 or "real"."""
    return FAKE if label in (1, "fake") else REAL


def for_matplotlib(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    r, g, b = (channel / 255 for channel in colour)
    return r, g, b
