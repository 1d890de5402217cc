"""Detection runs side by side: the AUROC, AP, EER, TPR at 0.1/1/5 % FPR, ECE, Brier and W1 of several
``metrics.json``, one column per run, each figure with the interval its run drew, and which direction is better."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError
from ..uncertainty import better
from .reports import METRIC_LABELS, numeric, with_interval

COMPARED = ("auroc", "ap", "eer", "tpr@0.1%", "tpr@1%", "tpr@5%", "ece", "brier", "wasserstein")
Table = tuple[list[str], list[list[str]]]


def load_runs(paths: Sequence[str | Path]) -> list[tuple[str, dict]]:
    """Each run's name and ``metrics.json`` (a folder means the one inside); repeated names get the path."""
    runs = []
    for path in map(Path, paths):
        file = path / "metrics.json" if path.is_dir() else path
        try:
            data = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UsageError(f"{file}: cannot read it as metrics.json ({error})") from None
        if not isinstance(data, dict) or "tables" not in data:
            raise UsageError(f"{file}: not a metrics.json written by `clipforensics evaluate` (detection task)")
        runs.append((str(data.get("name") or file.parent.name), data))
    names = [name for name, _ in runs]
    return [(f"{name} ({path})" if names.count(name) > 1 else name, data)
            for (name, data), path in zip(runs, paths)]


def comparison(runs: Sequence[tuple[str, dict]], level: str = "video") -> Table:
    """One row per dataset, source and metric (``COMPARED``, in %), which direction of it is better, one column per
    run (the figure, and its interval [low, high] where the run drew one), and the difference (second minus first)
    when there are two runs; n/a where a run lacks the row or the metric (a run written before it existed) or the
    metric is undefined. Rows undefined in every run (AUROC of a real source alone) are left out."""
    tables = [{(row["dataset"], row["source"]): row for row in data["tables"][level]} for _, data in runs]
    keys = dict.fromkeys(key for table in tables for key in table)
    header = ["dataset", "source", "metric", "better", *(name for name, _ in runs)] + (
        ["difference"] if len(runs) == 2 else [])
    body = []
    for dataset, source in keys:
        for metric in COMPARED:
            rows = [table.get((dataset, source), {}) for table in tables]
            values = [row.get(metric) for row in rows]
            if all(value is None or math.isnan(value) for value in values):
                continue
            cells = [dataset or "all", source or "all", METRIC_LABELS[metric], better(metric),
                     *(with_interval(row, metric) for row in rows)]
            if len(runs) == 2:
                known = all(v is not None and not math.isnan(v) for v in values)
                cells.append(f"{100 * (values[1] - values[0]):+.2f}" if known else "n/a")
            body.append(cells)
    return header, body


def data_differences(runs: Sequence[tuple[str, dict]], level: str = "video") -> list[str]:
    """How the runs' data differ, one line per run unlike the first: its counts (metrics.json ``counts``) and the
    real and fake items scored per dataset and source at ``level``. None when every run saw the same data."""
    def footprint(data: dict) -> tuple[dict, dict]:
        rows = {(row["dataset"], row["source"]): (row.get("real"), row.get("fake")) for row in data["tables"][level]}
        return data.get("counts", {}), rows

    (first, first_data), *others = runs
    base_counts, base_rows = footprint(first_data)
    lines = []
    for name, data in others:
        counts, rows = footprint(data)
        if (counts, rows) == (base_counts, base_rows):
            continue
        what = [f"{key} {base_counts.get(key)} vs {counts.get(key)}" for key in dict.fromkeys([*base_counts, *counts])
                if base_counts.get(key) != counts.get(key)]
        groups = [f"{dataset or 'all'}/{source or 'all'}" for dataset, source in dict.fromkeys([*base_rows, *rows])
                  if base_rows.get((dataset, source)) != rows.get((dataset, source))]
        shown = ", ".join(groups[:5]) + (", ..." if len(groups) > 5 else "")
        lines.append(f"{name} was evaluated on different data than {first}"
                     + (f" ({'; '.join(what)})" if what else "") + (f"; rows differ in {shown}" if groups else ""))
    return lines


def rule_differences(runs: Sequence[tuple[str, dict]], level: str = "video") -> list[str]:
    """At video level, one line per run whose video rule (``video_score`` in metrics.json) is not the first's;
    a run written before the rule was recorded scored videos by their frames' mean (``largest``)."""
    if level != "video":
        return []
    (first, first_data), *others = runs
    base = first_data.get("video_score", "largest")
    return [f"{name} scored its videos by --video-score {data.get('video_score', 'largest')}, {first} by {base}"
            for name, data in others if data.get("video_score", "largest") != base]


def html_page(title: str, header: list[str], body: list[list[str]]) -> str:
    """A self-contained HTML page holding the table (text escaped, numbers right-aligned)."""
    def row(cells: list[str], tag: str) -> str:
        return "<tr>" + "".join(f'<{tag}{" class=num" if numeric(cell) else ""}>{html.escape(cell)}</{tag}>'
                                for cell in cells) + "</tr>"

    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            "<style>body{font-family:sans-serif} table{border-collapse:collapse} td,th{padding:2px 8px;"
            "border-bottom:1px solid #ddd;text-align:left} .num{text-align:right}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n<table>\n<thead>{row(header, 'th')}</thead>\n<tbody>\n"
            + "\n".join(row(cells, "td") for cells in body) + "\n</tbody></table></body></html>\n")


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in body)])


def text_table(header: list[str], body: list[list[str]]) -> str:
    """Columns aligned with spaces, numbers to the right."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(w) if numeric(cell) else cell.ljust(w) for cell, w in zip(cells, widths))

    return "\n".join(line(row).rstrip() for row in [header, *body])
