"""Jobs kept in SQLite (``<state-dir>/jobs.sqlite``): what each was asked, its inputs, its status, who created it
(the hash of its key), its run's header (``inference.provenance``) and the rows written so far. A job is recorded
before it is acknowledged (202), and each row as its input finishes, so a restart loses nothing accepted."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL, options TEXT NOT NULL, inputs TEXT NOT NULL,
    error TEXT, created REAL NOT NULL, finished REAL, owner TEXT, run TEXT
);
CREATE TABLE IF NOT EXISTS rows (
    job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, number INTEGER NOT NULL, row TEXT NOT NULL,
    PRIMARY KEY (job, number)
);
"""
NEWEST_FIRST = "CREATE INDEX IF NOT EXISTS jobs_newest_first ON jobs (owner, created DESC, id DESC)"
STATUSES = ("queued", "running", "done", "failed", "cancelled")
UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class Input:
    name: str
    """The client's file name, shown in rows."""
    file: str
    """The generated name it is stored under in the job's inputs folder."""


@dataclass
class Job:
    id: str
    task: str
    status: str
    options: dict
    inputs: list[Input]
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    owner: str | None = None
    """The sha256 of the key that created it (None: the service has no keys)."""
    run: dict | None = None
    """Its run's header (``inference.provenance.run_header``'s ``run``), once it started."""


@dataclass(frozen=True)
class Listed:
    """A job as listed: how many of its inputs have their row, and how many of those an error."""

    job: Job
    done: int
    failed: int


class JobStore:
    """One connection shared by the event loop and the worker threads, each operation under a lock."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            columns = {column for _, column, *_ in self._db.execute("PRAGMA table_info(jobs)")}
            for added in ("owner", "run"):  # a state folder of an earlier version
                if added not in columns:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {added} TEXT")
            self._db.execute(NEWEST_FIRST)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, job: Job, rows: list[dict] | None = None) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (job.id, job.task, job.status, json.dumps(job.options),
                              json.dumps([[item.name, item.file] for item in job.inputs]), job.error, job.created,
                              job.finished, job.owner, None if job.run is None else json.dumps(job.run)))
            self._db.executemany("INSERT INTO rows VALUES (?, ?, ?)",
                                 [(job.id, number, json.dumps(row)) for number, row in enumerate(rows or [])])

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            found = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(found) if found else None

    def rows(self, job_id: str) -> list[dict]:
        with self._lock:
            found = self._db.execute("SELECT row FROM rows WHERE job = ? ORDER BY number", (job_id,)).fetchall()
        return [json.loads(row) for (row,) in found]

    def set_run(self, job_id: str, run: dict) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE jobs SET run = ? WHERE id = ?", (json.dumps(run), job_id))

    def add_row(self, job_id: str, number: int, row: dict) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", (job_id, number, json.dumps(row)))

    def set_status(self, job_id: str, status: str, error: str | None = None) -> None:
        finished = None if status in UNFINISHED else time.time()
        with self._lock, self._db:
            self._db.execute("UPDATE jobs SET status = ?, error = ?, finished = ? WHERE id = ?",
                             (status, error, finished, job_id))

    def restart(self, job_id: str) -> None:
        """Back to queued, its rows dropped: an interrupted job runs again from its first input."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM rows WHERE job = ?", (job_id,))
            self._db.execute("UPDATE jobs SET status = 'queued', error = NULL, finished = NULL WHERE id = ?",
                             (job_id,))

    def remove(self, job_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def ids(self, statuses: tuple[str, ...] = STATUSES) -> list[str]:
        """Ids of the jobs in ``statuses``, oldest first."""
        marks = ", ".join("?" * len(statuses))
        with self._lock:
            found = self._db.execute(f"SELECT id FROM jobs WHERE status IN ({marks}) ORDER BY created", statuses)
            return [job_id for (job_id,) in found.fetchall()]

    def newest(self, owner: str | None, status: str | None, before: tuple[float, str] | None,
               limit: int) -> list[Listed]:
        """At most ``limit`` jobs, newest first: ``owner``'s (all when None), of ``status`` (any when None), those
        older than ``before`` (the created time and id of the last job of the previous page)."""
        conditions, values = [], []
        for condition, value in (("owner = ?", owner), ("status = ?", status)):
            if value is not None:
                conditions.append(condition)
                values.append(value)
        if before is not None:
            conditions.append("(created, id) < (?, ?)")
            values.extend(before)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._lock:
            found = self._db.execute(
                "SELECT *, (SELECT COUNT(*) FROM rows WHERE job = jobs.id), (SELECT COUNT(*) FROM rows WHERE "
                f"job = jobs.id AND json_extract(row, '$.error') IS NOT NULL) FROM jobs {where} "
                "ORDER BY created DESC, id DESC LIMIT ?", (*values, limit)).fetchall()
        return [Listed(_job(row[:-2]), *row[-2:]) for row in found]

    def finished_before(self, moment: float) -> list[str]:
        with self._lock:
            found = self._db.execute("SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ?", (moment,))
            return [job_id for (job_id,) in found.fetchall()]


def _job(row: tuple) -> Job:
    job_id, task, status, options, inputs, error, created, finished, owner, run = row
    return Job(job_id, task, status, json.loads(options), [Input(*item) for item in json.loads(inputs)], error,
               created, finished, owner, None if run is None else json.loads(run))
