"""The FastAPI application: ``create_app(settings, runners)``.

Routes: ``GET /healthz``; under /v1 (behind the key when one is set) ``GET /models``, ``GET /schema`` (the
rows' fields and CSV columns), ``POST /detect`` and ``POST /localize`` (answered when done), ``POST`` / ``GET
/jobs`` (the caller's, newest first), ``GET`` / ``DELETE /jobs/{id}``, ``GET /files/{id}/{path}``; the web page at
``/`` and ``/static``; the OpenAPI schema at ``/docs``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from .. import __version__
from ..colours import FAKE, PEOPLE, REAL
from ..inference.provenance import machine, tool
from ..inference.rows import schema
from .auth import caller_of
from .errors import ApiError, install_error_handlers
from .jobs import LIFE
from .listing import JobStatus, Listing, cursor_after, described, listing_options
from .options import RequestOptions, face_parameters, request_options, task_option
from .runners import Runners
from .service import Service
from .settings import ServeSettings
from .uploads import FIELD, MAX_FILES

DESCRIPTION = """Face deepfake detection and DeCLIP localization on CLIP's vision encoder.

Send images and videos as multipart/form-data, one or more `files` parts. Each input gets one row, the row
`clipforensics detect` (or `localize`) writes, in the order sent, with `path` the file's name as sent. Files are
judged by their content, as `detect` judges them; a file that cannot be decoded (a damaged video, a broken image, an
audio file, a text file) gets its row with its `kind` and `error`, as long as one file of the request is an image or
a video.

With `explain=true`, each face of a detect row names its `explanation`: the URL of a PNG of where the detector
looked for the score its call on that face rests on, and `explains`: `fake` or `real`, that call (the head's own, at
p_fake 0.5). p_fake is the same as without.

Errors answer `{"error": "...", "detail": ...}`: 401 without a key (when the service has keys), 404, 409 (no
localizer; explain with a model that has no head), 413 (over the upload limit), 415 (no file is an image or a
video: `detail` gives each file's `kind` and `error`), 422 (no files, an empty file, bad options), 503 with
`Retry-After` (the queue is full)."""


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class RowSchema(BaseModel):
    csv_columns: list[str]
    """The columns of a CSV of results (`detect --output x.csv`), in order."""
    detection_fields: list[str]
    """A detect row's fields, in order (`mask` and `overlay` only where maps were made)."""
    person_fields: list[str]
    """The fields of each person in a detect row's `people`, in order (`face`: their face, a small JPEG as a data
    URL)."""
    localization_fields: list[str]
    """A localize row's fields, in order."""
    map_files: list[str]
    """The fields naming the files a localizer writes for an input."""


class Results(BaseModel):
    run: dict[str, Any]
    """What made the rows: the tool, the model (its weights' sha256), device, precision, every option that changes a
    score, and when it started (the `run` of `detect --output x.jsonl`'s first line)."""
    results: list[dict[str, Any]]


class LocalizeResults(Results):
    id: str
    """The request's id: its mask and overlay are served under /v1/files/<id>/."""


class Accepted(BaseModel):
    id: str
    status_url: str


class Progress(BaseModel):
    done: int
    """Inputs with their row."""
    failed: int
    """Inputs whose row has an `error`."""
    total: int


class JobSummary(BaseModel):
    id: str
    task: str
    status: JobStatus
    created: str
    """ISO 8601, UTC."""
    finished: str | None
    files: list[str]
    """The files' names, as sent."""
    progress: Progress
    error: str | None
    """Why the job failed (an input's error is in its row)."""
    status_url: str


class JobState(JobSummary):
    run: dict[str, Any] | None
    """What made its rows (as `Results`' `run`), once it started."""
    results: list[dict[str, Any]]


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None
    """The `cursor` of the next page; None on the last."""


class Cancelled(BaseModel):
    id: str
    status: str


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD],
    "properties": {FIELD: {"type": "array", "items": {"type": "string", "format": "binary"},
                           "description": f"images and videos (at most {MAX_FILES})"}}}}}}}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (401, "missing or wrong API key"), (409, "no localizer loaded, or explain with a model without a head"),
        (413, "upload too large"),
        (415, "no file is an image or a video"), (422, "no files, an empty file, or bad options"),
        (503, "queue full: try again after Retry-After seconds"))}


def create_app(settings: ServeSettings, runners: Runners) -> FastAPI:
    service = Service(settings, runners)
    app = FastAPI(title="clipforensics", version=__version__, description=DESCRIPTION, lifespan=service.lifespan,
                  openapi_tags=[{"name": "jobs", "description": LIFE}])
    install_error_handlers(app)
    caller = Depends(caller_of(settings.key_hashes))
    api = APIRouter(prefix="/v1", dependencies=[caller],
                    responses={401: {"model": ErrorBody, "description": "missing or wrong API key"}})
    options_of = Depends(request_options(runners.face_detectors))
    upload = {**UPLOAD_BODY, "parameters": face_parameters(runners.face_detectors)}  # read by request_options

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Whether the service answers (open without the key)."""
        return {"status": "ok"}

    @api.get("/models", tags=["service"])
    def models() -> dict[str, Any]:
        """The loaded models by role (detector, localizer; each with its `identity`: name, weights' sha256,
        calibration, family and size, and the device and precision it runs in), the tool and the machine, the face
        detectors a request may ask for, the colours boxes are drawn in (fake, real, and each person's by id, the
        palette repeating), and the limits."""
        return {"models": runners.describe(), "tool": tool(), "machine": machine(),
                "face_detectors": list(runners.face_detectors),
                "drawing": {"fake": _hex(FAKE), "real": _hex(REAL), "people": [_hex(colour) for colour in PEOPLE]},
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_queue": settings.max_queue,
                           "max_files": MAX_FILES}}

    @api.get("/schema", tags=["service"], response_model=RowSchema)
    def row_schema() -> dict[str, list[str]]:
        """The fields of the rows detect and localize answer, and the columns of a CSV of them."""
        return schema()

    @api.post("/detect", tags=["inference"], response_model=Results, responses=UPLOAD_ERRORS,
              openapi_extra=upload)
    async def detect(request: Request, options: RequestOptions = options_of,
                     owner: str | None = caller) -> dict[str, Any]:
        """Score images and videos now: one row per file, with per-frame and per-face detail (with `explain`,
        each face's explanation as a URL, kept and listed among the caller's jobs as long as a finished job)."""
        _, run, rows = await service.run_now("detect", request, options, owner)
        return {"run": run, "results": rows}

    @api.post("/localize", tags=["inference"], response_model=LocalizeResults, responses=UPLOAD_ERRORS,
              openapi_extra=upload)
    async def localize(request: Request, options: RequestOptions = options_of,
                       owner: str | None = caller) -> dict[str, Any]:
        """Map manipulated pixels now: one row per file with its `mask` and `overlay` as URLs (kept, and listed
        among the caller's jobs, as long as a finished job)."""
        request_id, run, rows = await service.run_now("localize", request, options, owner)
        return {"id": request_id, "run": run, "results": rows}

    @api.post("/jobs", tags=["jobs"], status_code=202, response_model=Accepted, responses=UPLOAD_ERRORS,
              openapi_extra=upload)
    async def submit(request: Request, task: Annotated[str, Depends(task_option)],
                     options: RequestOptions = options_of, owner: str | None = caller) -> dict[str, str]:
        """Queue a job (`task` detect or localize); its state is at `status_url`. Accepted jobs survive a
        restart of the service."""
        job_id = await service.submit(task, request, options, owner)
        return {"id": job_id, "status_url": f"/v1/jobs/{job_id}"}

    @api.get("/jobs", tags=["jobs"], response_model=JobList,
             responses={422: {"model": ErrorBody, "description": "a bad status, limit or cursor"}})
    def jobs(listing: Annotated[Listing, Depends(listing_options)], owner: str | None = caller) -> dict[str, Any]:
        """The caller's jobs (with keys, those its key created), newest first, a page at a time: give
        `next_cursor` as `cursor` for the next page."""
        found = service.store.newest(owner, listing.status, listing.before, listing.limit + 1)
        page = found[: listing.limit]
        return {"jobs": [described(listed.job, listed.done, listed.failed) for listed in page],
                "next_cursor": cursor_after(page[-1]) if len(found) > listing.limit else None}

    @api.get("/jobs/{job_id}", tags=["jobs"], response_model=JobState,
             responses={404: {"model": ErrorBody, "description": "no such job"}})
    def job(job_id: str, owner: str | None = caller) -> dict[str, Any]:
        """A job's status, progress, and the rows of the inputs done so far."""
        found = service.job(job_id, owner)
        if found is None:
            raise _no_job(job_id)
        rows = service.store.rows(job_id)
        failed = sum(row["error"] is not None for row in rows)
        return {**described(found, len(rows), failed), "run": found.run, "results": rows}

    @api.delete("/jobs/{job_id}", tags=["jobs"], response_model=Cancelled,
                responses={404: {"model": ErrorBody, "description": "no such job"}})
    def cancel(job_id: str, owner: str | None = caller) -> dict[str, str]:
        """Cancel a job and remove its files (a running job stops after its current input); a finished job is
        deleted with its rows and files."""
        status = service.queue.cancel(job_id) if service.job(job_id, owner) else None
        if status is None:
            raise _no_job(job_id)
        return {"id": job_id, "status": status}

    @api.get("/files/{job_id}/{path:path}", tags=["jobs"],
             responses={200: {"content": {"image/png": {}, "video/mp4": {}}},
                        404: {"model": ErrorBody, "description": "no such file"}})
    def files(job_id: str, path: str, owner: str | None = caller) -> Any:
        """A mask or overlay a job or localize request wrote (a video's masks: the list of their URLs), or a
        face's explanation."""
        found = service.folders.served(job_id, path) if service.job(job_id, owner) else None
        if found is None:
            raise ApiError(404, "no such file", {"id": job_id, "path": path})
        if found.is_dir():
            return {"files": [service.folders.url(job_id, frame) for frame in sorted(found.iterdir())]}
        return FileResponse(found)

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        page = settings.static_dir / "index.html"
        if not page.is_file():
            raise ApiError(404, "no web page installed", str(page))
        return FileResponse(page)

    app.mount("/static", StaticFiles(directory=settings.static_dir, check_dir=False), name="static")
    return app


def _no_job(job_id: str) -> ApiError:
    return ApiError(404, "no such job", {"id": job_id, "hint": "finished jobs are removed after --keep-hours"})


def _hex(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in colour)
