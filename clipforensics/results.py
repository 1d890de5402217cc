"""Per-input verdicts and the JSONL / CSV files they are written to."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROW_FIELDS = ("path", "p_fake", "label", "error")


@dataclass
class Result:
    """The verdict on one input; ``error`` is set (and ``p_fake`` is None) when it could not be scored."""

    path: str | None
    p_fake: float | None = None
    label: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in ROW_FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class ResultWriter:
    """Writes rows as they come (``.jsonl`` or ``.csv``), flushed, so a stopped run keeps its rows."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise ValueError(f"output must end in .jsonl or .csv, not {self.path.name!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=ROW_FIELDS) if suffix == ".csv" else None
        if self._csv:
            self._csv.writeheader()

    def write(self, result: Result) -> None:
        if self._csv:
            self._csv.writerow(result.to_dict())
        else:
            self._file.write(result.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
