"""A job as the service describes it (``GET /v1/jobs`` lists them, ``GET /v1/jobs/{id}`` adds the rows), and the
options of a listing: newest first, a page at a time (``limit``; ``cursor``, the ``next_cursor`` of the page
before), of one ``status``."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Request

from .errors import invalid_options
from .options import refuse_unknown
from .store import STATUSES, Job, Listed

JobStatus = Literal[STATUSES]  # type: ignore[valid-type]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class Listing:
    status: str | None
    limit: int
    before: tuple[float, str] | None
    """The created time and id of the previous page's last job; None: the first page."""


def listing_options(
    request: Request,
    status: Annotated[JobStatus | None, Query(description="only the jobs of this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="jobs a page, at most")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="the `next_cursor` of the previous page")] = None,
) -> Listing:
    refuse_unknown(request, {"status", "limit", "cursor"})
    return Listing(status, limit, None if cursor is None else _position(cursor))


def cursor_after(listed: Listed) -> str:
    """The cursor of the page after the one ``listed`` ends."""
    position = json.dumps([listed.job.created, listed.job.id]).encode()
    return base64.urlsafe_b64encode(position).decode().rstrip("=")


def _position(cursor: str) -> tuple[float, str]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(created), str(job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise invalid_options([{"field": "cursor", "input": cursor,
                                "message": "not a cursor of this service: give the next_cursor of the page before, "
                                           "or none for the first page"}]) from None


def described(job: Job, done: int, failed: int) -> dict[str, Any]:
    """The job's summary: what it does, its status, when, its files (the names sent) and how far it is."""
    return {"id": job.id, "task": job.task, "status": job.status, "created": _moment(job.created),
            "finished": None if job.finished is None else _moment(job.finished),
            "files": [item.name for item in job.inputs],
            "progress": {"done": done, "failed": failed, "total": len(job.inputs)}, "error": job.error,
            "status_url": f"/v1/jobs/{job.id}"}


def _moment(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
