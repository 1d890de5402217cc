"""The one progress rule: a bar on stderr for more than a few items, unless asked otherwise."""

from __future__ import annotations

SHOWN_ABOVE = 8


def progress_bar(total: int | None, enabled: bool | None = None, desc: str = "", unit: str = "input"):
    """A tqdm bar over ``total`` items (None: a count without an end, e.g. the frames of a long video):
    shown when ``enabled``, or (None) when there are over eight items or no known end."""
    from tqdm import tqdm

    show = (total is None or total > SHOWN_ABOVE) if enabled is None else enabled
    return tqdm(total=total, disable=not show, unit=unit, desc=desc, leave=False)
