"""The sha256 a zoo entry pins for each file it fetches, and the two checks made with it: when a file is
downloaded (one that does not match is deleted, never used) and on demand (``clipforensics zoo --verify``).

A file whose publisher gave no hash that this version could pin is ``UNPINNED``: it is fetched and used with a
warning that names the sha256 it has, for a user to compare with the publisher's; ``zoo --verify`` reports it
as unpinned, with that sha256."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError

log = logging.getLogger(__name__)

UNPINNED = None
"""A zoo file's pin when no sha256 of the published file is known (``ZooEntry.sha256``)."""
STATUSES = ("ok", "mismatch", "unpinned", "not cached")
"""What ``verify`` finds of a file: it matches its pin, it does not (and was deleted), it has no pin to
compare with, or there is no file to check."""


def sha256_of(path: Path) -> str:
    """The file's sha256, hex, read in chunks."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def check_download(path: Path, expected: str | None, what: str, remove: Callable[[], None], advice: str) -> None:
    """A downloaded file held to its pin: a mismatch is deleted (``remove``) and raised; an unpinned file is
    kept with a warning naming its sha256. ``what`` names the file and its source."""
    status, actual = _held_to_pin(path, expected, remove)
    if status == "unpinned":
        log.warning("%s is not pinned to a known sha256 in this version of clipforensics, so its content could not "
                    "be checked; its sha256 is %s (compare it with the publisher's)", what, actual)
    elif status == "mismatch":
        raise DownloadError(f"{what} does not match its pinned sha256 (expected {expected}, got {actual}): the "
                            f"download was corrupted or the published file changed; it was deleted. {advice}")


@dataclass(frozen=True)
class FileCheck:
    """One cached file of a zoo entry checked against its pin (``status``: one of ``STATUSES``)."""

    entry: str
    file: str
    status: str
    path: Path | None = None
    sha256: str | None = None
    expected: str | None = None

    def line(self) -> str:
        """One line of ``zoo --verify``."""
        where = f"{self.entry} {self.file}"
        if self.status == "ok":
            return f"ok          {where} (sha256 {self.sha256})"
        if self.status == "mismatch":
            return (f"MISMATCH    {where}: sha256 {self.sha256}, pinned {self.expected}; deleted {self.path} "
                    "(the next use downloads it again)")
        if self.status == "unpinned":
            return f"unpinned    {where}: sha256 {self.sha256}, no known hash to compare with ({self.path})"
        return f"not cached  {where}"


def check_cached(entry: str, file: str, path: Path | None, expected: str | None,
                 remove: Callable[[], None]) -> FileCheck:
    """A cached file (``path``; None when not cached) against its pin; a mismatch is deleted (``remove``), as a
    download that does not match is."""
    if path is None:
        return FileCheck(entry, file, "not cached")
    status, actual = _held_to_pin(path, expected, remove)
    return FileCheck(entry, file, status, path, actual, expected)


def _held_to_pin(path: Path, expected: str | None, remove: Callable[[], None]) -> tuple[str, str]:
    """The file's status against its pin (ok, mismatch or unpinned) and its sha256; a mismatch is deleted
    (``remove``)."""
    actual = sha256_of(path)
    if expected is UNPINNED:
        return "unpinned", actual
    if actual != expected:
        remove()
        return "mismatch", actual
    return "ok", actual
