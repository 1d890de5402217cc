"""How counts are worded in what the tool prints."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is one: "1 input", "3 inputs", "0 inputs"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
