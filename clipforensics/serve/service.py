"""What the routes share: the store, the job folders, the slots and the queue, the private temporary folder,
and the way an upload is taken in (streamed, judged by content, kept under generated names). Its lifespan
starts the service (jobs left over run again, old ones are removed, on a timer too) and stops it (running
jobs stop after their current input and stay in the store, temporary files go)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from ..words import counted
from .errors import ApiError
from .folders import JobFolders
from .jobs import JobQueue, Slots
from .options import RequestOptions
from .probe import is_media, refusal
from .rows import predict_rows, run_of
from .runners import Runners
from .settings import ServeSettings
from .store import Input, Job, JobStore
from .uploads import Upload, Uploads, receive, stored_name

log = logging.getLogger("clipforensics.serve")
Received = list[tuple[str, Path]]
"""Uploads as (the client's name, where it is kept)."""


class Service:
    def __init__(self, settings: ServeSettings, runners: Runners):
        self.settings, self.runners = settings, runners
        self.store = JobStore(settings.state_dir / "jobs.sqlite")
        self.folders = JobFolders(settings.state_dir)
        self.slots = Slots(settings.max_queue)
        self.queue = JobQueue(self.store, self.folders, runners, self.slots)
        self.temporary: Path | None = None

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.temporary = Path(tempfile.mkdtemp(prefix="clipforensics-serve-"))
        recovered = self.queue.recover()
        if recovered:
            log.info("%s left unfinished run again", counted(recovered, "job"))
        sweeper = asyncio.create_task(self._sweep_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            self.queue.stopping.set()
            await run_in_threadpool(self.runners.shutdown)
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.store.close()

    async def run_now(self, task: str, request: Request, options: RequestOptions,
                      owner: str | None) -> tuple[str, dict, list[dict]]:
        """A synchronous request: its uploads scored on its model's threads, in a slot of the queue; its id, its
        run's header (``rows.run_of``) and its rows. A localize request's maps (an explained detect request's
        explanations) are kept in a folder of its own, recorded as a finished job of ``owner`` (so they are served,
        and removed with the other finished jobs)."""
        runner = self.runners.for_task(task, options.explain)
        run = run_of(runner.predictor, task, options, self.runners.face_model)
        request_id = self._take_slot()
        try:
            async with self._received(request) as inputs:
                maps = self.folders.maps(request_id) if task == "localize" or options.explain else None
                if maps is not None:
                    self.folders.create(request_id)
                def url(path: str) -> str:
                    return self.folders.url(request_id, path)

                try:
                    rows = await asyncio.wrap_future(runner.executor.submit(
                        lambda: list(predict_rows(runner.predictor, task, inputs, options, maps, url,
                                                  self.runners.face_model))))
                    if maps is not None:
                        self.store.add(Job(request_id, task, "done", options.to_dict(),
                                           [Input(name, path.name) for name, path in inputs], finished=time.time(),
                                           owner=owner, run=run), rows)
                except BaseException:
                    self.folders.remove(request_id)
                    raise
        finally:
            self.slots.release(request_id)
        return request_id, run, rows

    async def submit(self, task: str, request: Request, options: RequestOptions, owner: str | None) -> str:
        """A job of ``owner``: its uploads moved into its folder and the job recorded, queued, before the id is
        returned."""
        self.runners.for_task(task, options.explain)
        job_id = self._take_slot()
        try:
            async with self._received(request) as inputs:
                folder = self.folders.inputs(job_id)
                self.folders.create(job_id)
                folder.mkdir(mode=0o700)
                await run_in_threadpool(lambda: [shutil.move(path, folder / path.name) for _, path in inputs])
                self.queue.accept(Job(job_id, task, "queued", options.to_dict(),
                                      [Input(name, path.name) for name, path in inputs], owner=owner))
        except BaseException:
            self.folders.remove(job_id)
            self.slots.release(job_id)
            raise
        return job_id

    def job(self, job_id: str, owner: str | None) -> Job | None:
        """The job, or None when there is none or another key created it (a key sees only its own jobs)."""
        found = self.store.get(job_id)
        return found if found is not None and owner in (None, found.owner) else None

    def _take_slot(self) -> str:
        holder = uuid.uuid4().hex
        if not self.slots.acquire(holder):
            after = self.settings.retry_after_s
            raise ApiError(503, "queue full", {"max_queue": self.slots.limit, "retry_after_s": after},
                           {"Retry-After": str(after)})
        return holder

    @asynccontextmanager
    async def _received(self, request: Request) -> AsyncIterator[Received]:
        """The request's uploads, renamed to their generated names in the request's private folder (415 when none
        is an image or a video by its content); removed on exit, whatever happens."""
        with Uploads(self.temporary) as uploads:
            await receive(request, uploads, self.settings.max_upload_bytes)
            yield await run_in_threadpool(_identified, uploads.items)

    async def _sweep_forever(self) -> None:
        keep = self.settings.keep_seconds
        while True:
            try:
                removed = await run_in_threadpool(self.queue.sweep, keep)
            except Exception:  # a failed sweep is tried again at the next
                log.exception("removing old jobs failed")
            else:
                if removed:
                    log.info("%s older than %g h removed", counted(removed, "finished job"), self.settings.keep_hours)
            await asyncio.sleep(min(300.0, max(1.0, keep / 4)))


def _identified(uploads: list[Upload]) -> Received:
    """The uploads under their generated names; 415 when none is an image or a video (judged before they are
    named)."""
    media = any(is_media(upload.path) for upload in uploads)
    for number, upload in enumerate(uploads):
        upload.path = upload.path.rename(upload.path.with_name(stored_name(number, upload.name)))
    received = [(upload.name, upload.path) for upload in uploads]
    if not media:
        raise refusal(received)
    return received
