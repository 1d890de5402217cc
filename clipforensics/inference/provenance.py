"""Where a run's rows come from: its header, made here once for the command line, the API, Ray and the service.

Each row carries its input's sha256 (``Result.sha256``); what is the same for every row of an output is said once,
in the header ``{"run": {...}}``: the tool and its version, the model (its name or path, the sha256 of its weights
files, its calibration, family and size), the device and the precision actually used, the machine, every option
that changes a score (``ScoreSettings`` and the decision), and when the run started. It is the first line of a JSONL
output and ``<name>.run.json`` beside a CSV; readers of rows skip it (``read_rows``). A resumed run compares its
header with the one recorded (``differences``)."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..hub.digests import sha256_of
from ..words import changes

if TYPE_CHECKING:
    from .settings import ScoreSettings

RUN = "run"
"""The header record's one key."""
WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pth", ".pt", ".bin")
"""The files of a checkpoint folder that hold weights (its config.json is read, not hashed)."""
IDENTITY = ("name", "weights_sha256", "calibration")
"""The model's identity as a resume compares it (its family and size follow from its weights)."""


def run_header(model: dict, device: str, precision: str, options: dict, started: str | None = None,
               attention: str | None = None) -> dict:
    """The header of a run: the ``model``'s identity (``Predictor.identity``), where and in which precision it ran
    and which ``attention`` kernel its passes took (``bf16_kernels.attention_kernel``; None before a model is
    loaded), the ``options`` that change a score, and when it ``started`` (ISO 8601; default: now)."""
    return {RUN: {"tool": tool(), "model": model, "device": device, "precision": precision, "attention": attention,
                  "machine": machine(), "options": options,
                  "started": started or datetime.now(timezone.utc).isoformat(timespec="seconds")}}


def tool() -> dict:
    """The tool that wrote a run: its name and version."""
    from .. import __version__

    return {"name": "clipforensics", "version": __version__}


def scoring_options(settings: ScoreSettings, decision: dict) -> dict:
    """Every option that changes a score or a label: the settings', and the decision's (``Decision.settings()``, or
    its options as given where no model is loaded to resolve them)."""
    return {**settings.to_dict(), **decision}


def checkpoint_identity(name: str | None, path: Path | None) -> dict:
    """What names a checkpoint: ``name`` as given (a zoo name or a path), its resolved ``path`` and the sha256 of
    each of its weights files (None where there is no local file, as for a model built in memory)."""
    return {"name": name, "path": None if path is None else str(path.resolve()),
            "weights_sha256": None if path is None else weights_sha256(path)}


def weights_sha256(path: Path) -> dict[str, str]:
    """The sha256 of the checkpoint's weights files, by name: the file itself, or a folder's weights files."""
    files = [path] if path.is_file() else sorted(file for file in path.iterdir()
                                                 if file.suffix in WEIGHT_SUFFIXES and file.is_file())
    return {file.name: _file_sha256(str(file.resolve()), *_stamp(file)) for file in files}


def _stamp(file: Path) -> tuple[int, int]:
    status = file.stat()
    return status.st_size, status.st_mtime_ns


@cache
def _file_sha256(path: str, size: int, modified: int) -> str:
    """A weights file's digest, once per version of the file (its size and time) in a process."""
    return sha256_of(Path(path))


@cache
def machine() -> dict:
    """The machine the run went on: its name, processor, Python and torch."""
    import torch

    return {"host": platform.node(), "cpu": _cpu_name(), "python": platform.python_version(),
            "torch": torch.__version__}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def is_header(record: object) -> bool:
    return isinstance(record, dict) and list(record) == [RUN]


def read_rows(path: str | Path) -> Iterator[dict]:
    """A JSONL output's rows, its header skipped, as they are read."""
    with open(path) as file:
        yield from rows_of(file)


def rows_of(lines: Iterable[str]) -> Iterator[dict]:
    """The rows of JSONL lines (a file, standard output's text split in lines), the header skipped."""
    for line in lines:
        if line.strip():
            record = json.loads(line)
            if not is_header(record):
                yield record


def read_header(path: str | Path) -> dict | None:
    """An output's header (``{"run": ...}``): a JSONL's first line, or a CSV's ``run.json`` beside it; None when it
    has none (written before headers were)."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        with open(path) as file:
            first = file.readline()
        record = json.loads(first) if first.strip() else None
        return record if is_header(record) else None
    beside = run_file(path)
    return json.loads(beside.read_text()) if beside.is_file() else None


def run_file(output: Path) -> Path:
    """Where a CSV output's header goes: ``<name>.run.json`` beside it."""
    return output.with_name(output.stem + ".run.json")


def differences(recorded: dict, new: dict) -> list[str]:
    """Where the run ``new`` (a header's ``run``) would score otherwise than ``recorded``: each field that differs,
    as ``field: old -> new`` (model fields as ``model.name``, options by their names)."""
    model = {key: recorded.get("model", {}).get(key) for key in IDENTITY}
    return [*changes(model, {key: new.get("model", {}).get(key) for key in IDENTITY}, "model."),
            *changes(recorded.get("options", {}), new.get("options", {})),
            *changes({"precision": recorded.get("precision")}, {"precision": new.get("precision")})]
