"""The queue: slots (``--max-queue``), accepted jobs run on their model's worker threads, cancelling, jobs
run again after a restart, and finished jobs removed once they are old. A job's life is ``LIFE`` (served in the
OpenAPI schema); its rows are stored as each input finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import closing

from .errors import ApiError
from .folders import JobFolders
from .options import RequestOptions
from .rows import predict_rows, run_of
from .runners import Runners
from .store import UNFINISHED, Job, JobStore

log = logging.getLogger("clipforensics.serve")
LIFE = """A job's status: `queued` (recorded, its files kept) -> `running` -> `done` (each input has its row; an input
that could not be read or scored has its `error`) or `failed` (the job itself failed: its `error` says why).
`DELETE` removes a queued job at once (answering `cancelled`); a running one is `cancelled` until its current input
ends, then removed; a `done` or `failed` one is removed with its rows and files (answering `deleted`). Finished jobs
are removed after `--keep-hours`. A job queued or running when the service stops is `queued` again, from its first
input, when the service starts on the same state folder."""


class Slots:
    """Jobs queued or running and synchronous requests in progress, each holding one slot until it ends."""

    def __init__(self, limit: int):
        self.limit = limit
        self._holders: set[str] = set()
        self._lock = threading.Lock()

    def acquire(self, holder: str, force: bool = False) -> bool:
        with self._lock:
            if len(self._holders) >= self.limit and not force:
                return False
            self._holders.add(holder)
            return True

    def release(self, holder: str) -> None:
        with self._lock:
            self._holders.discard(holder)

    @property
    def taken(self) -> int:
        return len(self._holders)


class JobQueue:
    def __init__(self, store: JobStore, folders: JobFolders, runners: Runners, slots: Slots):
        self.store, self.folders, self.runners, self.slots = store, folders, runners, slots
        self.stopping = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        """Orders a job's claim by a worker against its cancelling."""

    def accept(self, job: Job) -> None:
        """Records a queued job (it holds a slot already) and hands it to its model's threads."""
        self.store.add(job)
        self._submit(job)

    def recover(self) -> int:
        """At start-up: folders no job owns (uploads of a request cut short) are removed, and jobs left queued
        or running are queued again, from their first input. Returns how many."""
        known = set(self.store.ids())
        for orphan in set(self.folders.ids()) - known:
            self.folders.remove(orphan)
        unfinished = self.store.ids(UNFINISHED)
        for job_id in unfinished:
            self.store.restart(job_id)
            self.folders.clear_maps(job_id)
            self.slots.acquire(job_id, force=True)
            self._submit(self.store.get(job_id))
        return len(unfinished)

    def cancel(self, job_id: str) -> str | None:
        """``cancelled`` (a queued job, removed now; a running one, removed after its current input),
        ``deleted`` (a finished job and its files), or None when there is no such job."""
        with self._lock:
            job = self.store.get(job_id)
            if job is None:
                return None
            if job.status == "running":
                self._cancelled.add(job_id)
                self.store.set_status(job_id, "cancelled")
                return "cancelled"
            if job.status == "cancelled":
                return "cancelled"
            self._remove(job_id)
        return "cancelled" if job.status == "queued" else "deleted"

    def sweep(self, keep_seconds: float) -> int:
        """Removes the jobs (rows and files) finished more than ``keep_seconds`` ago; returns how many."""
        expired = self.store.finished_before(time.time() - keep_seconds)
        with self._lock:
            for job_id in expired:
                self._remove(job_id)
        return len(expired)

    def _submit(self, job: Job) -> None:
        try:
            executor = self.runners.for_task(job.task).executor
        except ApiError as error:
            self._finish(job.id, "failed", f"{error.error}: {error.detail}")
            return
        executor.submit(self._run, job.id)

    def _run(self, job_id: str) -> None:
        with self._lock:
            job = self.store.get(job_id)
            if job is None or job.status != "queued" or self.stopping.is_set():
                return
            self.store.set_status(job_id, "running")
        try:
            ended = self._work(job)
        except Exception as error:  # a job's failure is its own: the service and the other jobs go on
            log.exception("job %s failed", job_id)
            self._finish(job_id, "failed", f"{type(error).__name__}: {error}")
            return
        if ended != "stopping":  # a job interrupted by the service stopping runs again after the restart
            self._finish(job_id, "done")

    def _work(self, job: Job) -> str | None:
        """Runs the job, storing each row as its input finishes; stops early when cancelled or stopping."""
        inputs = [(item.name, self.folders.inputs(job.id) / item.file) for item in job.inputs]
        runner = self.runners.for_task(job.task)
        options = RequestOptions.from_dict(job.options)
        self.store.set_run(job.id, run_of(runner.predictor, job.task, options, self.runners.face_model))
        rows = predict_rows(runner.predictor, job.task, inputs, options,
                            self.folders.maps(job.id), lambda path: self.folders.url(job.id, path),
                            self.runners.face_model)
        with closing(rows):
            for number, row in enumerate(rows):
                self.store.add_row(job.id, number, row)
                if job.id in self._cancelled:
                    return "cancelled"
                if self.stopping.is_set() and number + 1 < len(inputs):
                    return "stopping"
        return None

    def _finish(self, job_id: str, status: str, error: str | None = None) -> None:
        with self._lock:
            if job_id in self._cancelled:
                self._cancelled.discard(job_id)
                self._remove(job_id)
            else:
                self.store.set_status(job_id, status, error)
        self.slots.release(job_id)

    def _remove(self, job_id: str) -> None:
        """Files first: once the job is gone from the store (a 404), its files are gone too."""
        self.folders.remove(job_id)
        self.store.remove(job_id)
        self.slots.release(job_id)
