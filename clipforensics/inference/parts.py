"""Rows of a distributed run, kept as they come in part files beside the output, then merged into it.

``F.parts/`` holds ``run.json`` (how many inputs, a digest of their paths, and the run's header: its model,
precision and options, so that a resumed run is the same run, never a mix of two) and ``rows-<n>.jsonl`` (or
``.parquet``) files of ``{"index", "row"}``, sorted by index; each part is written under a ``.part`` name and
renamed when complete, so a stopped run leaves whole parts only. Merging keeps the first row of each input (a
retried input may have come twice), writes ``F`` in input order, under ``F.part`` until complete, and removes the
folder. Only the inputs' numbers stay in memory: the merge streams the sorted parts (``MAX_OPEN`` at a time, in
rounds when there are more), however many rows a run has.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import UsageError
from .provenance import RUN, differences
from .writers import ResultWriter

FORMATS = ("jsonl", "parquet")
MAX_OPEN = 256
"""Part files read at once by a merge round."""
Record = tuple[int, dict]
USED = "used"
"""In ``run.json``, the run's header as the replicas ran it (``Parts.record_used``)."""


class Parts:
    """``header``: the run's (``provenance.run_header``), as planned before any model is loaded; a resumed run's
    must not differ from the one recorded where it matters (``provenance.differences``), and the recorded one stays
    the run's (``header``, its start time included)."""

    def __init__(self, output: Path, paths: Sequence[str], format: str = "jsonl", resume: bool = False,
                 header: dict | None = None):
        if format not in FORMATS:
            raise UsageError(f"part files are {' or '.join(FORMATS)}, not {format!r}")
        self.output, self.format = output, format
        self.folder = output.with_name(output.name + ".parts")
        run = {"inputs": len(paths), "digest": hashlib.sha256("\n".join(paths).encode()).hexdigest()}
        if self.folder.exists() and not resume:
            raise UsageError(f"{self.folder} holds the rows of a stopped run: add --resume to continue it, or "
                             "remove the folder to start again")
        recorded = json.loads((self.folder / "run.json").read_text()) if resume and self.folder.exists() else None
        if recorded is not None and {key: recorded.get(key) for key in run} != run:
            raise UsageError(f"{self.folder} holds the rows of other inputs: --resume continues a run on the same "
                             "inputs; remove the folder to start again")
        if recorded is not None and header is not None:
            _check_same_run(self.folder, recorded.get(RUN), header[RUN])
        self.header = header if recorded is None or header is None else {RUN: recorded[RUN]}
        self.used = {RUN: recorded[USED]} if recorded is not None and USED in recorded else None
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "run.json").write_text(json.dumps({**run, **(self.header or {}),
                                                          **({USED: self.used[RUN]} if self.used else {})}))
        self.indices: set[int] = {index for part in self._parts() for index, _ in _records(part)}
        self._next = 1 + max((int(part.name.split("-")[1].split(".")[0]) for part in self.folder.glob("rows-*")),
                             default=-1)

    def _parts(self) -> list[Path]:
        return sorted(part for part in self.folder.glob("rows-*") if part.suffix != ".part")

    def write(self, rows: Iterable[Record]) -> None:
        """A new part file of these rows (an input already written keeps its first row)."""
        fresh = sorted(((index, row) for index, row in rows if index not in self.indices), key=lambda pair: pair[0])
        if not fresh:
            return
        path = self.folder / f"rows-{self._next:06d}.{self.format}"
        self._next += 1
        staging = path.with_name(path.name + ".part")
        if self.format == "parquet":
            _write_parquet(staging, fresh)
        else:
            staging.write_text("".join(_line(index, row) for index, row in fresh))
        staging.replace(path)
        self.indices.update(index for index, _ in fresh)

    def record_used(self, header: dict) -> None:
        """The header of the run as the replicas ran it (the device and precision they resolved, the model they
        loaded): the output's, recorded for a resume that has nothing left to score."""
        self.used = header
        run = json.loads((self.folder / "run.json").read_text())
        (self.folder / "run.json").write_text(json.dumps({**run, USED: header[RUN]}))

    def drop_if_empty(self) -> None:
        """Removes the folder of a run that stopped before its first part."""
        if not self.indices and self.folder.exists():
            shutil.rmtree(self.folder)

    def merge(self, count: int) -> Iterator[dict]:
        """Writes the output (with the run's header: as used, else as planned) from every input's row, in input
        order, and removes the parts; yields the rows as they are written (the output is complete once the rows
        are exhausted)."""
        header = self.used or self.header
        missing = [index for index in range(count) if index not in self.indices]
        if missing:
            raise RuntimeError(f"{len(missing)} inputs have no row in {self.folder} (first: {missing[0]})")
        staging = self.output.with_name(self.output.name + ".part")
        with ResultWriter(staging, self.output.suffix, header, self.output) as writer:
            for _, row in self._in_order():
                writer.write_row(row)
                yield row
        staging.replace(self.output)
        shutil.rmtree(self.folder)

    def _in_order(self) -> Iterator[Record]:
        """Every input's first row, by index: the sorted parts merged, earlier parts first among equals."""
        for leftover in self.folder.glob("merged-*"):
            leftover.unlink()
        parts, round_ = self._parts(), 0
        while len(parts) > MAX_OPEN:
            merged = []
            for start in range(0, len(parts), MAX_OPEN):
                path = self.folder / f"merged-{round_}-{start // MAX_OPEN:06d}.jsonl"
                with path.open("w") as file:
                    file.writelines(_line(index, row) for index, row in _first_of_each(parts[start : start + MAX_OPEN]))
                merged.append(path)
            parts, round_ = merged, round_ + 1
        return _first_of_each(parts)


def _check_same_run(folder: Path, recorded: dict | None, new: dict) -> None:
    """Refuses to resume with another model, precision or options than the run recorded in ``folder`` used."""
    if recorded is None:
        raise UsageError(f"{folder} records no settings (written by an earlier version): its rows cannot be shown "
                         "to match this run's; remove the folder to start again")
    changed = differences(recorded, new)
    if changed:
        raise UsageError(f"{folder} holds rows scored otherwise than this run would score them ("
                         f"{'; '.join(changed)}): --resume continues a run with the same model, precision and "
                         "options; give the recorded ones, or remove the folder to start again")


def _first_of_each(parts: list[Path]) -> Iterator[Record]:
    previous = None
    for index, row in heapq.merge(*(_records(part) for part in parts), key=lambda record: record[0]):
        if index != previous:
            previous = index
            yield index, row


def _line(index: int, row: dict) -> str:
    return json.dumps({"index": index, "row": row}) + "\n"


def _records(part: Path) -> Iterator[Record]:
    """A part's records as they are read, never the whole file at once."""
    if part.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(part).iter_batches():
            for record in batch.to_pylist():
                yield record["index"], json.loads(record["row"])
        return
    with part.open() as file:
        for line in file:
            record = json.loads(line)
            yield record["index"], record["row"]


def _write_parquet(path: Path, rows: list[tuple[int, dict]]) -> None:
    """The row's flat fields as columns to query, and the whole row as JSON (what the merge reads)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"index": index, **{key: value for key, value in row.items() if not isinstance(value, (dict, list))},
                "row": json.dumps(row)} for index, row in rows]
    pq.write_table(pa.Table.from_pylist(records), path)
