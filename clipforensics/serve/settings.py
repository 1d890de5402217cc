"""What a running service is told: its limits, where it keeps jobs, its key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
"""The web page: index.html, app.js, style.css (no build step)."""
MB = 2**20


@dataclass(frozen=True)
class ServeSettings:
    state_dir: Path
    """Holds ``jobs.sqlite`` and ``jobs/<id>/`` (a job's uploads and maps)."""
    max_upload_mb: float = 200
    """The largest request body accepted, all files together (MB of 2**20 bytes)."""
    max_queue: int = 16
    """Jobs queued or running, and synchronous requests in progress, at most."""
    jobs: int = 1
    """Inputs of different requests a model works on at once (worker threads per model)."""
    keep_hours: float = 24
    """Finished jobs, their rows and files are removed this long after they finish."""
    key_hashes: frozenset[str] = frozenset()
    """The sha256 of each key (``auth.key_hash``); when any, every /v1 request needs ``Authorization: Bearer <key>``
    with one of them, and each key sees only the jobs it created."""
    retry_after_s: int = 2
    """What a 503 (queue full) tells the client to wait."""
    static_dir: Path = STATIC

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def keep_seconds(self) -> float:
        return self.keep_hours * 3600
