"""The one progress rule: a bar on stderr for more than a few items, unless asked otherwise."""

from __future__ import annotations

SHOWN_ABOVE = 8


def progress_bar(total: int, enabled: bool | None = None, desc: str = "", unit: str = "input"):
    """A tqdm bar over ``total`` items: shown when ``enabled``, or (None) when there are over eight."""
    from tqdm import tqdm

    show = total > SHOWN_ABOVE if enabled is None else enabled
    return tqdm(total=total, disable=not show, unit=unit, desc=desc, leave=False)
