"""The files an evaluation writes: ``predictions.csv``, ``metrics.json``, and the reports.

One template pair (``templates/report.html.j2``, ``templates/report.md.j2``) renders both tasks from a
``Report``: a summary, a note on how to read the numbers, the metric tables, the figures, a detection's example
faces with their explanations, and the inputs that failed. ``report.html`` is self-contained (figures as base64 PNG
data URIs, text escaped); ``report.md`` links the same figures, written to ``plots/``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..metrics import CALIBRATION_BINS
from .plots import detection_figures, localization_figures, png

if TYPE_CHECKING:
    from ..uncertainty import Bootstrap
    from .evaluations import DetectionEvaluation, Evaluation, LocalizationEvaluation
    from .explained import ExplainedExample

DETECTION_METRICS = {"auroc": "AUROC", "ap": "AP", "eer": "EER", "accuracy": "Acc@0.5",
                     "balanced_accuracy": "BalAcc@0.5"}
OPERATING_METRICS = {"tpr@0.1%": "TPR@0.1%", "threshold@0.1%": "thr@0.1%", "tpr@1%": "TPR@1%",
                     "threshold@1%": "thr@1%", "tpr@5%": "TPR@5%", "threshold@5%": "thr@5%", "ece": "ECE",
                     "brier": "Brier", "wasserstein": "W1"}
"""The second table of each level: TPR at fixed FPRs and their thresholds, then calibration."""
METRIC_LABELS = {**DETECTION_METRICS, **OPERATING_METRICS}
LOCALIZATION_METRICS = {"iou": "IoU@0.5", "f1": "F1@0.5", "best_f1": "F1 best", "pixel_ap": "pixel AP",
                        "ap": "image AP", "accuracy": "image Acc@0.5"}
CAPTIONS = {
    "roc": "ROC curves per dataset",
    "pr": "Precision-recall curves per dataset (fake is the positive class)",
    "histograms": "Frame p_fake per source",
    "confusion": "Confusion matrices at p_fake 0.5",
    "reliability": (f"Reliability diagrams per dataset: the share of fakes against the mean p_fake in "
                    f"{CALIBRATION_BINS} equal-width bins, disc area by the bin's count (the diagonal is perfect "
                    "calibration)"),
    "examples": "Input, true mask and predicted map of the first fakes with a mask",
}
DETECTION_NOTE = (
    "Metrics in %. A video: the frames that share a video id, scored by their mean p_fake. A fake source is "
    "scored against the real sources of its dataset (column 'against'); a real source alone has one class, so only "
    "its accuracy (share called real) and calibration are defined. Failed frames are left out. TPR@x% is the true "
    "positive rate at the lowest threshold on p_fake (thr@x%, called fake at p_fake >= thr) whose false positive "
    "rate is at most x%; thr is n/a where calling only the top-scored items fake already exceeds that FPR (TPR 0). "
    f"ECE: expected calibration error over {CALIBRATION_BINS} equal-width bins of p_fake; Brier: mean "
    "(p_fake - label)^2; W1: Wasserstein-1 distance between the real and the fake p_fake distributions. Thresholds "
    "are p_fake values, not %. [low, high] after AUROC, AP, EER and TPR: the 95% bootstrap interval, resampling "
    "the row's videos (video level) or frames (frame level), reals among reals and fakes among fakes; a figure "
    "with a wide interval, or named in a warning above, rests on too few samples to compare.")
LOCALIZATION_NOTE = (
    "Metrics in %. Pixel metrics (IoU, F1 at 0.5 and at each image's best threshold, pixel AP) are means over the "
    "fake images that have a mask (column 'masked'), on the model's maps, each mask taken through the image's "
    "geometry to the map's size; F1 leaves out a band around the mask's boundary, as DeCLIP does. Image AP and "
    "accuracy rank images by their score (the head's p_fake, or the mean of the map for a model without a head), "
    "each fake source against the reals of its dataset. Failed images are left out.")
EXAMPLES_NOTE = (
    "The frames the detector called most fake: the fakes and the reals with the highest p_fake (its surest calls, "
    "and its worst false alarms), each under where the detector looked for the score its call rests on, for fake "
    "where its head says fake, for real where it says real (gradient-weighted attention rollout, the scale 0 to 1 "
    "in the corner: red drove the score most). An explanation shows the detector's reasons, not which pixels were "
    "edited.")
TEMPLATES = {"html": "report.html.j2", "md": "report.md.j2"}
TRAIN_CONFIG = "train_config"
"""The model record's key for the configuration it was trained with (``training.callbacks``)."""
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class Table:
    heading: str
    header: list[str]
    body: list[list[str]]

    @property
    def numeric(self) -> list[bool]:
        """Per column: whether every cell is a number (right-aligned)."""
        return [bool(self.body) and all(numeric(row[i]) for row in self.body) for i in range(len(self.header))]


@dataclass(frozen=True)
class Plot:
    key: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    @property
    def path(self) -> str:
        """Where ``report.md`` links it, relative to the report."""
        return f"{PLOTS_DIR}/{self.key}.png"


@dataclass(frozen=True)
class Report:
    """What both templates render, for either task."""

    title: str
    summary: list[tuple[str, str]]
    note: str
    tables: list[Table]
    plots_heading: str
    plots: list[Plot]
    failed_heading: str
    failed: list[tuple[str, str]]
    examples: list[Plot] = field(default_factory=list)
    """A detection's example faces, each explained, its caption its score."""
    examples_note: str = EXAMPLES_NOTE


def write_evaluation(evaluation: Evaluation, out_dir: str | Path, name: str) -> list[Path]:
    """``predictions.csv`` (one row per input), ``metrics.json``, ``report.html``, ``report.md`` and the
    PNGs the latter links (in ``plots/``), in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(evaluation, out / "predictions.csv")
    (out / "metrics.json").write_text(json.dumps(evaluation.to_dict(name), indent=2) + "\n")
    content = report(evaluation, name)
    written = [out / "predictions.csv", out / "metrics.json", out / "report.html", out / "report.md"]
    for plot in content.plots + content.examples:
        written.append(out / plot.path)
        written[-1].parent.mkdir(exist_ok=True)
        written[-1].write_bytes(plot.png)
    (out / "report.html").write_text(render(content, "html"))
    (out / "report.md").write_text(render(content, "md"))
    return written


def write_predictions(evaluation: Evaluation, path: Path) -> None:
    """The rows' columns (the row type's ``COLUMNS``), no score and NaN as empty cells."""
    from .predictions import ROWS

    columns = ROWS[evaluation.task].COLUMNS
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for row in evaluation.rows:
            writer.writerow(_cell(getattr(row, column)) for column in columns)


def _cell(value: object) -> object:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def report(evaluation: Evaluation, name: str) -> Report:
    """The report of either task."""
    if evaluation.task == "localization":
        return _localization_report(evaluation, name)  # type: ignore[arg-type]
    return _detection_report(evaluation, name)  # type: ignore[arg-type]


def render(content: Report, kind: str) -> str:
    """``content`` through the ``kind`` ("html" or "md") template."""
    return render_template(TEMPLATES[kind], report=content)


def render_template(name: str, **context: object) -> str:
    """The template ``name`` of ``templates/`` (HTML autoescaped, the page they share: ``page.html.j2``)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("clipforensics.evaluation", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["md"] = lambda cell: str(cell).replace("|", "\\|")
    return environment.get_template(name).render(**context)


def _detection_report(evaluation: DetectionEvaluation, name: str) -> Report:
    counts = evaluation.counts()
    plots = _plots(detection_figures(evaluation))
    summary = [*_provenance(evaluation),
               ("frames", f"{counts['frames']} ({counts['scored']} scored, {counts['failed']} failed)"),
               ("videos", str(counts["videos"])), ("intervals", _intervals(evaluation.bootstrap)),
               *(("warning", line) for line in evaluation.warnings)]
    tables = []
    for level in ("video", "frame"):
        rows = [row.to_dict() for row in evaluation.tables[level]]
        tables += [Table(f"{level.capitalize()} level", *metric_cells(rows)),
                   Table(f"{level.capitalize()} level: operating points and calibration", *operating_cells(rows))]
    missing = [] if plots else [("plots", "none: nothing was scored")]
    return Report(_title(evaluation, name), summary + missing, DETECTION_NOTE,
                  tables + _training_tables(evaluation), "Plots", plots, "Failed frames", _failed(evaluation),
                  [_example(number, example) for number, example in enumerate(evaluation.examples)])


def _localization_report(evaluation: LocalizationEvaluation, name: str) -> Report:
    counts = evaluation.counts()
    plots = _plots(localization_figures(evaluation))
    summary = [*_provenance(evaluation),
               ("images", f"{counts['images']} ({counts['scored']} scored, {counts['failed']} failed, "
                          f"{counts['masked']} fakes with a mask)")]
    missing = [] if plots else [("examples", "none: no fake with a mask was scored")]
    return Report(_title(evaluation, name), summary + missing, LOCALIZATION_NOTE,
                  [Table("Image and pixel metrics", *localization_cells(evaluation.table)),
                   *_training_tables(evaluation)], "Examples", plots, "Failed images", _failed(evaluation))


def _intervals(bootstrap: Bootstrap) -> str:
    if not bootstrap.replicates:
        return "none (--bootstrap 0)"
    return (f"{100 * bootstrap.confidence:g}% bootstrap, {bootstrap.replicates} replicates stratified by label, "
            f"seed {bootstrap.seed}")


def _title(evaluation: Evaluation, name: str) -> str:
    """The run's name and the model's: a model folder by its last two parts (runs/detector/best:
    detector/best), which tell a run's best model from its last."""
    source = str(evaluation.model.get("source", "unknown model"))
    model = "/".join(Path(source).parts[-2:]) if "/" in source else source
    return f"{name}: {evaluation.task} evaluation of {model}"


def _provenance(evaluation: Evaluation) -> list[tuple[str, str]]:
    """The model's record, a line each; the training configuration has its own table."""
    model = evaluation.model
    return [("model", str(model.get("source", "unknown"))),
            *((key, readable(value)) for key, value in model.items() if key not in ("source", TRAIN_CONFIG)),
            ("perturbation", evaluation.perturbation or "none"),
            *((("video score", evaluation.video_score),) if hasattr(evaluation, "video_score") else ())]


def _training_tables(evaluation: Evaluation) -> list[Table]:
    """The configuration the model was trained with, a setting a row (section.setting), when it was trained
    here."""
    config = evaluation.model.get(TRAIN_CONFIG)
    if not isinstance(config, dict):
        return []
    return [Table("Training configuration", ["setting", "value"],
                  [[key, readable(value)] for key, value in flattened(config)])]


def flattened(settings: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            rows += flattened(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def readable(value: object) -> str:
    """A value as a reader writes it: text as it is, lists joined, a record as key value pairs."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return ", ".join(f"{key} {readable(item)}" for key, item in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(readable, value)) or "none"
    return "none" if value is None else str(value)


def _plots(figures: dict) -> list[Plot]:
    return [Plot(key, CAPTIONS[key], png(figure)) for key, figure in figures.items()]


def _example(number: int, example: ExplainedExample) -> Plot:
    from PIL import Image

    encoded = io.BytesIO()
    Image.fromarray(example.overlay).save(encoded, "PNG")
    truth = "fake" if example.label else "real"
    return Plot(f"example-{number}", f"{Path(example.path).name}: {truth}, p_fake {example.p_fake:.3f}; the map: "
                                     f"why {example.explains}", encoded.getvalue())


def _failed(evaluation: Evaluation) -> list[tuple[str, str]]:
    return [(row.path, str(row.error)) for row in evaluation.failed]


def metric_cells(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of detection rows (as in ``metrics.json``), metrics in %."""
    header = ["dataset", "source", "against", "real", "fake", *DETECTION_METRICS.values()]
    body = [[row["dataset"] or "all", row["source"] or "all", ", ".join(row["against"]), str(row["real"]),
             str(row["fake"]), *(with_interval(row, key) for key in DETECTION_METRICS)] for row in rows]
    return header, body


def operating_cells(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the operating points and calibration of detection rows: TPRs, ECE, Brier and W1 in
    %, thresholds as p_fake values."""
    header = ["dataset", "source", "real", "fake", *OPERATING_METRICS.values()]
    body = [[row["dataset"] or "all", row["source"] or "all", str(row["real"]), str(row["fake"]),
             *(threshold(row[key]) if key.startswith("threshold@") else with_interval(row, key)
               for key in OPERATING_METRICS)]
            for row in rows]
    return header, body


def localization_cells(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of localization rows, metrics in %."""
    header = ["dataset", "source", "real", "fake", "masked", *LOCALIZATION_METRICS.values()]
    body = [[row["dataset"] or "all", row["source"] or "all", str(row["real"]), str(row["fake"]), str(row["masked"]),
             *(percent(row[key]) for key in LOCALIZATION_METRICS)] for row in rows]
    return header, body


def percent(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def with_interval(row: dict, key: str) -> str:
    """A metric of a row (as in ``metrics.json``) in %, followed by its interval where one was drawn and defined:
    ``97.12 [95.30, 98.41]``."""
    low, high = row.get("intervals", {}).get(key, (None, None))
    shown = percent(row.get(key))
    return shown if low is None or high is None else f"{shown} [{percent(low)}, {percent(high)}]"


def threshold(value: float | None) -> str:
    """A threshold on p_fake, to six decimals (a confident detector's thresholds crowd towards 0 or 1)."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.6f}"


def numeric(cell: str) -> bool:
    """A number as the tables print it (or n/a, an undefined one), with its interval or without."""
    number = cell.split(" [", 1)[0]
    return number.lstrip("+-").replace(".", "", 1).isdigit() or number == "n/a"
