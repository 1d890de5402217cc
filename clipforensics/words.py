"""How counts are worded in what the tool prints, and which valid word a misspelt one was meant to be."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is one: "1 input", "3 inputs", "0 inputs"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def closest(word: str, valid: Iterable[str]) -> str | None:
    """The valid word nearest to ``word`` (difflib's judgement), or None when none is near: what a misspelt option
    or choice is answered with, on the command line and by the service alike."""
    match = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return match[0] if match else None
