"""How counts and changed settings are worded in what the tool prints, and which valid word a misspelt one was meant
to be."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is one: "1 input", "3 inputs", "0 inputs"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def closest(word: str, valid: Iterable[str]) -> str | None:
    """The valid word nearest to ``word`` (difflib's judgement), or None when none is near: what a misspelt option
    or choice is answered with, on the command line and by the service alike."""
    match = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return match[0] if match else None


def changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Each field whose value differs, as ``field: old -> new``; a field holding fields is followed into them
    (``faces.crop_size: 256 -> 128``)."""
    said = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            said += changes(before, after, f"{prefix}{key}.")
        elif before != after:
            said.append(f"{prefix}{key}: {_shown(before)} -> {_shown(after)}")
    return said


def _shown(value: object) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
