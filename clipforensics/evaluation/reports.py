"""Evaluation reports, and runs compared side by side.

``write_reports`` writes ``report.html`` (self-contained: plots embedded as base64 PNG) and ``report.md``
(plots beside it in ``plots/``): the video- and frame-level tables overall, per dataset and per source,
ROC and PR curves per dataset, p_fake histograms per source and confusion matrices at 0.5.
``load_runs`` and ``comparison`` put the video-level AUROC, AP and EER of several ``metrics.json`` side
by side. Plots draw on matplotlib ``Figure`` objects (Agg canvas), never pyplot's global state.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..metrics import auroc, average_precision, cumulative_counts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .detection import Evaluation

LEVELS = ("video", "frame")
METRICS = {"auroc": "AUROC", "ap": "AP", "eer": "EER", "accuracy": "Acc@0.5", "balanced_accuracy": "BalAcc@0.5"}
COMPARED = ("auroc", "ap", "eer")
PLOTS = {
    "roc": "ROC curves per dataset",
    "pr": "Precision-recall curves per dataset (fake is the positive class)",
    "histograms": "Frame p_fake per source",
    "confusion": "Confusion matrices at p_fake 0.5",
}
NOTE = ("Metrics in %. A video is a frame's parent folder, scored by the mean p_fake of its frames. A fake source "
        "is scored against the real sources of its dataset (column 'against'); a real source alone has one class, "
        "so only its accuracy (share called real) is defined. Failed frames are left out.")
Table = tuple[list[str], list[list[str]]]


def write_reports(evaluation: Evaluation, out_dir: Path, name: str) -> list[Path]:
    """``report.html``, ``report.md`` and the PNGs the latter links, in ``out_dir``."""
    data = evaluation.to_dict(name)
    images = {key: png(figure) for key, figure in figures(evaluation).items()}
    written = []
    for key, image in images.items():
        (out_dir / "plots").mkdir(exist_ok=True)
        written.append(out_dir / "plots" / f"{key}.png")
        written[-1].write_bytes(image)
    (out_dir / "report.html").write_text(html_report(data, images, evaluation.failed))
    (out_dir / "report.md").write_text(markdown_report(data, {key: f"plots/{key}.png" for key in images},
                                                       evaluation.failed))
    return [out_dir / "report.html", out_dir / "report.md", *written]


def metric_cells(rows: Sequence[dict]) -> Table:
    """Header and cells of one level's rows (as in ``metrics.json``), metrics in %."""
    header = ["dataset", "source", "against", "real", "fake", *METRICS.values()]
    body = [[row["dataset"] or "all", row["source"] or "all", ", ".join(row["against"]), str(row["real"]),
             str(row["fake"]), *(percent(row[key]) for key in METRICS)] for row in rows]
    return header, body


def percent(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _summary(data: dict, failed: int, plotted: bool) -> list[tuple[str, str]]:
    counts = data["counts"]
    model = data["model"]
    missing = [] if plotted or not counts["scored"] else [("plots", "not drawn: nothing was scored")]
    return [
        ("model", str(model.get("source", "unknown"))),
        *((key, json.dumps(value) if not isinstance(value, str) else value)
          for key, value in model.items() if key != "source"),
        ("perturbation", data["perturbation"] or "none"),
        ("frames", f"{counts['frames']} ({counts['scored']} scored, {failed} failed)"),
        ("videos", str(counts["videos"])),
        *missing,
    ]


def html_report(data: dict, images: dict[str, bytes], failed: Sequence) -> str:
    """A self-contained page: summary, video and frame tables, plots as data URIs, failed frames."""
    esc = html.escape
    summary = "".join(f"<tr><th>{esc(key)}</th><td>{esc(value)}</td></tr>"
                      for key, value in _summary(data, len(failed), bool(images)))
    parts = [f"<h1>Evaluation: {esc(data['name'])}</h1>", f"<table class=summary>{summary}</table>",
             f"<p class=note>{esc(NOTE)}</p>"]
    for level in LEVELS:
        parts += [f"<h2>{level.capitalize()} level</h2>", _html_table(*metric_cells(data["tables"][level]))]
    if images:
        parts.append("<h2>Plots</h2>")
    for key, image in images.items():
        source = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        parts.append(f'<figure><img src="{source}" alt="{esc(PLOTS[key])}"><figcaption>{esc(PLOTS[key])}'
                     "</figcaption></figure>")
    if failed:
        items = "".join(f"<li><code>{esc(p.path)}</code>: {esc(p.error)}</li>" for p in failed)
        parts += [f"<h2>Failed frames ({len(failed)})</h2>", f"<ul>{items}</ul>"]
    return (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{esc(data['name'])}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.num{text-align:right}"
        "th{background:#f3f3f3}.note{color:#555;max-width:60em}img{max-width:100%}figure{margin:1.5em 0}"
        "figcaption{color:#555}")


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    rows = "".join("<tr>" + "".join(f"<td{' class=num' if index > 2 else ''}>{html.escape(cell)}</td>"
                                    for index, cell in enumerate(row)) + "</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def markdown_report(data: dict, images: dict[str, str], failed: Sequence) -> str:
    """The same report in Markdown; ``images`` maps each plot to the path the file links."""
    summary = [f"- **{key}**: {value}" for key, value in _summary(data, len(failed), bool(images))]
    lines = [f"# Evaluation: {data['name']}", "", *summary, "", NOTE]
    for level in LEVELS:
        lines += ["", f"## {level.capitalize()} level", "", markdown_table(*metric_cells(data["tables"][level]))]
    if images:
        lines += ["", "## Plots"]
    for key, path in images.items():
        lines += ["", f"![{PLOTS[key]}]({path})"]
    if failed:
        lines += ["", f"## Failed frames ({len(failed)})", "", *(f"- `{p.path}`: {p.error}" for p in failed)]
    return "\n".join(lines) + "\n"


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in body)])


def text_table(header: list[str], body: list[list[str]]) -> str:
    """Columns aligned with spaces, numbers to the right."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(w) if _numeric(cell) else cell.ljust(w) for cell, w in zip(cells, widths))

    return "\n".join(line(row).rstrip() for row in [header, *body])


def _numeric(cell: str) -> bool:
    return cell.lstrip("+-").replace(".", "", 1).isdigit() or cell == "n/a"


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def figures(evaluation: Evaluation) -> dict[str, Figure]:
    """The report's plots; none when nothing was scored."""
    if not evaluation.videos:
        return {}
    return {"roc": roc_figure(evaluation), "pr": pr_figure(evaluation),
            "histograms": histogram_figure(evaluation), "confusion": confusion_figure(evaluation)}


def _by_dataset(items: Sequence) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labels and p_fake of each dataset's items (frames or videos)."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item.dataset, []).append(item)
    return {dataset: (np.array([i.label for i in group]), np.array([i.p_fake for i in group], dtype=np.float64))
            for dataset, group in groups.items()}


def curves(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ROC (fpr, tpr) and precision-recall (recall, precision) vertices; both classes must be present.

    The same thresholds as ``metrics.auroc`` and ``metrics.average_precision``, so the plotted curves are the
    ones those numbers measure."""
    false_pos, true_pos = cumulative_counts(np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64))
    fpr, tpr = np.r_[0, false_pos] / false_pos[-1], np.r_[0, true_pos] / true_pos[-1]
    return fpr, tpr, true_pos / true_pos[-1], true_pos / (true_pos + false_pos)


def roc_figure(evaluation: Evaluation) -> Figure:
    figure, axes = _figure(1, 2)
    for ax, level in zip(axes[0], ("frame", "video")):
        for dataset, (labels, scores) in _by_dataset(evaluation.scored(level)).items():
            if 0 < labels.sum() < len(labels):
                fpr, tpr, _, _ = curves(labels, scores)
                ax.plot(fpr, tpr, label=f"{dataset} (AUROC {100 * auroc(labels, scores):.1f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        _decorate(ax, f"{level} level", "false positive rate", "true positive rate")
    return figure


def pr_figure(evaluation: Evaluation) -> Figure:
    figure, axes = _figure(1, 2)
    for ax, level in zip(axes[0], ("frame", "video")):
        for dataset, (labels, scores) in _by_dataset(evaluation.scored(level)).items():
            if 0 < labels.sum() < len(labels):
                _, _, recall, precision = curves(labels, scores)
                ax.plot(np.r_[0, recall], np.r_[precision[0], precision], drawstyle="steps-pre",
                        label=f"{dataset} (AP {100 * average_precision(labels, scores):.1f})")
        _decorate(ax, f"{level} level", "recall", "precision")
    return figure


def histogram_figure(evaluation: Evaluation) -> Figure:
    frames = evaluation.scored("frame")
    datasets = list(dict.fromkeys(p.dataset for p in frames))
    columns = min(3, len(datasets))
    figure, axes = _figure(math.ceil(len(datasets) / columns), columns)
    bins = np.linspace(0, 1, 26)
    for ax, dataset in zip(axes.flat, datasets):
        sources: dict[str, list] = {}
        for p in frames:
            if p.dataset == dataset:
                sources.setdefault(p.source, []).append(p)
        for source, members in sources.items():
            kind = "real" if members[0].label == 0 else "fake"
            ax.hist([p.p_fake for p in members], bins=bins, histtype="step", linewidth=1.5,
                    linestyle="--" if kind == "real" else "-", label=f"{source} ({kind}, {len(members)})")
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        _decorate(ax, dataset, "p_fake", "frames", square=False)
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    return figure


def confusion_figure(evaluation: Evaluation) -> Figure:
    levels = ("frame", "video")
    groups = {level: _by_dataset(evaluation.scored(level)) for level in levels}
    datasets = list(groups["frame"])
    figure, axes = _figure(len(levels), len(datasets), size=3.2)
    for row, level in enumerate(levels):
        for ax, dataset in zip(axes[row], datasets):
            labels, scores = groups[level][dataset]
            counts = np.array([[np.sum((labels == truth) & ((scores >= 0.5) == called)) for called in (False, True)]
                               for truth in (0, 1)])
            ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
            for (i, j), count in np.ndenumerate(counts):
                ax.text(j, i, str(count), ha="center", va="center",
                        color="white" if count > counts.max() / 2 else "black")
            ax.set_xticks([0, 1], ["real", "fake"])
            ax.set_yticks([0, 1], ["real", "fake"])
            ax.set_xlabel("called (p_fake >= 0.5)")
            ax.set_ylabel("truth")
            ax.set_title(f"{dataset}, {level} level")
    return figure


def _figure(rows: int, columns: int, size: float = 4.5) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size * columns, size * rows), layout="constrained")
    return figure, np.array(figure.subplots(rows, columns, squeeze=False))


def _decorate(ax, title: str, xlabel: str, ylabel: str, square: bool = True) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    if square:
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, "needs real and fake samples", ha="center", va="center", color="grey")


def load_runs(paths: Sequence[str | Path]) -> list[tuple[str, dict]]:
    """Each run's name and ``metrics.json`` (a folder means the one inside); repeated names get the path."""
    runs = []
    for path in map(Path, paths):
        file = path / "metrics.json" if path.is_dir() else path
        try:
            data = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{file}: cannot read it as metrics.json ({error})") from None
        if not isinstance(data, dict) or "tables" not in data:
            raise ValueError(f"{file}: not a metrics.json written by `clipforensics evaluate`")
        runs.append((str(data.get("name") or file.parent.name), data))
    names = [name for name, _ in runs]
    return [(f"{name} ({path})" if names.count(name) > 1 else name, data)
            for (name, data), path in zip(runs, paths)]


def comparison(runs: Sequence[tuple[str, dict]], level: str = "video") -> Table:
    """One row per dataset, source and metric (AUROC, AP, EER in %), one column per run, and the difference
    (second minus first) when there are two runs; n/a where a run lacks the row or the metric is undefined.
    Rows undefined in every run (a real source alone) are left out."""
    tables = [{(row["dataset"], row["source"]): row for row in data["tables"][level]} for _, data in runs]
    keys = dict.fromkeys(key for table in tables for key in table)
    header = ["dataset", "source", "metric", *(name for name, _ in runs)] + (["difference"] if len(runs) == 2 else [])
    body = []
    for dataset, source in keys:
        for metric in COMPARED:
            values = [table.get((dataset, source), {}).get(metric) for table in tables]
            if all(value is None or math.isnan(value) for value in values):
                continue
            cells = [dataset or "all", source or "all", METRICS[metric], *map(percent, values)]
            if len(runs) == 2:
                known = all(v is not None and not math.isnan(v) for v in values)
                cells.append(f"{100 * (values[1] - values[0]):+.2f}" if known else "n/a")
            body.append(cells)
    return header, body


LOCALIZATION_METRICS = {"iou": "IoU@0.5", "f1": "F1@0.5", "best_f1": "F1 best", "pixel_ap": "pixel AP",
                        "ap": "image AP", "accuracy": "image Acc@0.5"}
LOCALIZATION_NOTE = ("Metrics in %. Pixel metrics (IoU, F1 at 0.5 and at each image's best threshold, pixel AP) are "
                     "means over the fake images that have a mask (column 'masked'), on 256x256 maps; F1 leaves out a "
                     "band around the mask's boundary, as DeCLIP does. Image AP and accuracy rank images by their "
                     "score (the mean of the map), each fake source against the reals of its dataset.")


def localization_cells(rows: Sequence[dict]) -> Table:
    header = ["dataset", "source", "real", "fake", "masked", *LOCALIZATION_METRICS.values()]
    body = [[row["dataset"] or "all", row["source"] or "all", str(row["real"]), str(row["fake"]), str(row["masked"]),
             *(percent(row[key]) for key in LOCALIZATION_METRICS)] for row in rows]
    return header, body


def examples_figure(examples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> Figure:
    """One row per example: the model's input, the true mask, the predicted probability map."""
    figure, axes = _figure(len(examples), 3, size=2.6)
    for row, (path, image, truth, probabilities) in zip(axes, examples):
        for ax, picture, title in zip(row, (image, truth, probabilities), (Path(path).name, "mask", "map")):
            ax.imshow(picture, cmap=None if picture.ndim == 3 else "magma", vmin=0, vmax=1)
            ax.set_title(title, fontsize="small")
            ax.axis("off")
    return figure


def write_localization_reports(data: dict, examples: Sequence, failed: Sequence, out_dir: Path) -> list[Path]:
    """``report.html`` (self-contained) and ``report.md`` (+ ``plots/examples.png``) of a localization run."""
    image = png(examples_figure(examples)) if examples else None
    counts = data["counts"]
    summary = [("model", str(data["model"].get("source", "unknown"))), ("perturbation", data["perturbation"] or "none"),
               ("images", f"{counts['images']} ({counts['scored']} scored, {counts['failed']} failed, "
                          f"{counts['masked']} fakes with a mask)")]
    header, body = localization_cells(data["table"])
    esc = html.escape
    parts = [f"<h1>Localization: {esc(data['name'])}</h1>",
             "<table class=summary>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary)
             + "</table>", f"<p class=note>{esc(LOCALIZATION_NOTE)}</p>", _html_table(header, body)]
    lines = [f"# Localization: {data['name']}", "", *(f"- **{k}**: {v}" for k, v in summary), "", LOCALIZATION_NOTE,
             "", markdown_table(header, body)]
    written = []
    if image:
        (out_dir / "plots").mkdir(exist_ok=True)
        written.append(out_dir / "plots" / "examples.png")
        written[-1].write_bytes(image)
        source = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        parts += ["<h2>Examples</h2>", f'<figure><img src="{source}" alt="examples"><figcaption>input, true mask, '
                  "predicted map</figcaption></figure>"]
        lines += ["", "## Examples", "", "![input, true mask, predicted map](plots/examples.png)"]
    if failed:
        parts += [f"<h2>Failed images ({len(failed)})</h2>",
                  "<ul>" + "".join(f"<li><code>{esc(p.path)}</code>: {esc(p.error)}</li>" for p in failed) + "</ul>"]
        lines += ["", f"## Failed images ({len(failed)})", "", *(f"- `{p.path}`: {p.error}" for p in failed)]
    (out_dir / "report.html").write_text(
        f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{esc(data['name'])}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    return [out_dir / "report.html", out_dir / "report.md", *written]
