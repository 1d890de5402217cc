"""Rows of a distributed run, kept as they come in part files beside the output, then merged into it.

``F.parts/`` holds ``run.json`` (how many inputs, and a digest of their paths, so that a resumed run is the
same run) and ``rows-<n>.jsonl`` (or ``.parquet``) files of ``{"index", "row"}``; each part is written
under a ``.part`` name and renamed when complete, so a stopped run leaves whole parts only. Merging keeps
the first row of each input (a retried input may have come twice), writes ``F`` in input order, under
``F.part`` until complete, and removes the folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import UsageError
from .writers import ResultWriter

FORMATS = ("jsonl", "parquet")


class Parts:
    def __init__(self, output: Path, paths: Sequence[str], format: str = "jsonl", resume: bool = False):
        if format not in FORMATS:
            raise UsageError(f"part files are {' or '.join(FORMATS)}, not {format!r}")
        self.output, self.format = output, format
        self.folder = output.with_name(output.name + ".parts")
        run = {"inputs": len(paths), "digest": hashlib.sha256("\n".join(paths).encode()).hexdigest()}
        if self.folder.exists() and not resume:
            raise UsageError(f"{self.folder} holds the rows of a stopped run: add --resume to continue it, or "
                             "remove the folder to start again")
        if resume and self.folder.exists() and json.loads((self.folder / "run.json").read_text()) != run:
            raise UsageError(f"{self.folder} holds the rows of other inputs: --resume continues a run on the same "
                             "inputs; remove the folder to start again")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "run.json").write_text(json.dumps(run))
        self.rows: dict[int, dict] = {}
        for part in sorted(self.folder.glob("rows-*")):
            if part.suffix != ".part":
                for index, row in _read(part):
                    self.rows.setdefault(index, row)
        self._next = 1 + max((int(part.name.split("-")[1].split(".")[0]) for part in self.folder.glob("rows-*")),
                             default=-1)

    def write(self, rows: Iterable[tuple[int, dict]]) -> None:
        """A new part file of these rows (an input already written keeps its first row)."""
        fresh = [(index, row) for index, row in rows if index not in self.rows]
        if not fresh:
            return
        path = self.folder / f"rows-{self._next:06d}.{self.format}"
        self._next += 1
        staging = path.with_name(path.name + ".part")
        if self.format == "parquet":
            _write_parquet(staging, fresh)
        else:
            staging.write_text("".join(json.dumps({"index": index, "row": row}) + "\n" for index, row in fresh))
        staging.replace(path)
        self.rows.update(fresh)

    def drop_if_empty(self) -> None:
        """Removes the folder of a run that stopped before its first part."""
        if not self.rows and self.folder.exists():
            shutil.rmtree(self.folder)

    def merge(self, count: int) -> list[dict]:
        """Writes the output from every input's row, in input order, and removes the parts; the rows."""
        missing = [index for index in range(count) if index not in self.rows]
        if missing:
            raise RuntimeError(f"{len(missing)} inputs have no row in {self.folder} (first: {missing[0]})")
        rows = [self.rows[index] for index in range(count)]
        staging = self.output.with_name(self.output.name + ".part")
        with ResultWriter(staging, self.output.suffix) as writer:
            for row in rows:
                writer.write_row(row)
        staging.replace(self.output)
        shutil.rmtree(self.folder)
        return rows


def _read(part: Path) -> list[tuple[int, dict]]:
    if part.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(record["index"], json.loads(record["row"])) for record in pq.read_table(part).to_pylist()]
    return [(record["index"], record["row"]) for record in map(json.loads, part.read_text().splitlines())]


def _write_parquet(path: Path, rows: list[tuple[int, dict]]) -> None:
    """The row's flat fields as columns to query, and the whole row as JSON (what the merge reads)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"index": index, **{key: value for key, value in row.items() if not isinstance(value, (dict, list))},
                "row": json.dumps(row)} for index, row in rows]
    pq.write_table(pa.Table.from_pylist(records), path)
