"""Each job's folder under ``<state-dir>/jobs/<id>/``: ``inputs/`` (its uploads, under generated names) and
``maps/`` (the mask and overlay files and the faces' explanations the predictor writes), and the URLs those files
are served at."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

JOB_ID = re.compile(r"[0-9a-f]{32}")
FILES_ROUTE = "/v1/files"


class JobFolders:
    def __init__(self, state_dir: Path):
        self.root = state_dir / "jobs"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def inputs(self, job_id: str) -> Path:
        return self.folder(job_id) / "inputs"

    def maps(self, job_id: str) -> Path:
        return self.folder(job_id) / "maps"

    def create(self, job_id: str) -> Path:
        folder = self.folder(job_id)
        folder.mkdir(mode=0o700)
        return folder

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def clear_maps(self, job_id: str) -> None:
        shutil.rmtree(self.maps(job_id), ignore_errors=True)

    def ids(self) -> list[str]:
        return [entry.name for entry in os.scandir(self.root) if JOB_ID.fullmatch(entry.name)]

    def url(self, job_id: str, path: str | Path) -> str:
        """The URL a file the predictor wrote in the job's folder is served at."""
        return f"{FILES_ROUTE}/{job_id}/{Path(path).relative_to(self.folder(job_id)).as_posix()}"

    def served(self, job_id: str, relative: str) -> Path | None:
        """The file (or, for a video's masks, folder) of ``maps/`` that ``relative`` names, or None: only what
        lies inside the job's maps folder is ever served."""
        if not JOB_ID.fullmatch(job_id):
            return None
        maps = self.maps(job_id).resolve()
        path = (self.folder(job_id) / relative).resolve()
        return path if path.is_relative_to(maps) and path != maps and path.exists() else None
