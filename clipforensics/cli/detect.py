"""``detect`` and ``localize``: media in, one result row per input out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import UsageError
from ..words import counted
from . import engines, options
from .status import status_of
from .suggestions import Command

if TYPE_CHECKING:
    from ..evaluation.case import CaseReport
    from ..faces.options import FaceOptions
    from ..inference.ray_engine import RayOptions
    from ..inference.results import Result
    from ..inference.writers import ResultWriter
    from ..media import Sampler


@click.command(cls=Command, short_help="Score images and videos: one row per input.")
@options.media_inputs
@options.model
@click.option("--output", type=options.OUTPUT_FILE, metavar="FILE", callback=options.results_file,
              help="results file: .jsonl (with per-frame detail) or .csv; default: JSON lines on standard output")
@options.faces("detect", "auto: find and align faces; none: the inputs are already aligned face crops")
@options.video_verdict("how a person's p_fake comes from their faces' (--video-score largest: a video's from its "
                       "frames')")
@options.threshold("p_fake at or above which the label is fake")
@click.option("--save-crops", type=options.OUTPUT_DIR, metavar="DIR", help="keep the aligned face crops here")
@click.option("--annotate", type=options.OUTPUT_DIR, metavar="DIR",
              help="write each input here with its faces' boxes and p_fake drawn")
@click.option("--localize", type=options.OUTPUT_DIR, metavar="DIR",
              help="also write manipulation maps here, from the same forward pass (needs a model with a decoder)")
@click.option("--explain", type=options.OUTPUT_DIR, metavar="DIR",
              help="write each face's explanation here (where the model looked for its score; the row's detail "
                   "names the file), and draw it under the boxes with --annotate")
@click.option("--explain-method", type=click.Choice(["rollout", "gradcam"]), default="rollout", show_default=True,
              help="gradient-weighted attention rollout, or Grad-CAM on the last block's input")
@click.option("--report", type=options.OUTPUT_FILE, metavar="FILE.html", callback=options.report_file,
              help="also write a case report: one self-contained HTML file with a summary table, a section per input "
                   "(its picture or key frames drawn, its p_fake chart, maps and explanations when asked for) and "
                   "the run's provenance")
@options.max_pixels
@options.runtime(32, "face crops per model call")
@click.option("--workers", type=options.POSITIVE, metavar="N",
              help="threads decoding and finding faces (with --engine ray: in each replica)")
@options.engine(parts=True)
def detect(inputs: tuple[str, ...], model: str, output: str | None, faces: FaceOptions, frames: Sampler,
           aggregate: str, video: dict, decide: dict, save_crops: Path | None, annotate: Path | None,
           localize: Path | None, explain: Path | None, explain_method: str, report: Path | None, max_pixels: int,
           device: str, precision: str, batch_size: int, workers: int | None, ray: RayOptions | None) -> int:
    """Score images and videos: one row per input with path, p_fake, label, faces, frames, error and sha256, after a
    header line saying which tool, model, device, precision and options made them, as JSON lines on standard
    output or into --output.
    """
    sources = options.expand_inputs(inputs, [output, save_crops, annotate, localize, report])
    options.refuse_input_as_output(sources, report, "--report")
    predict = {"faces": faces, "frames": frames, "aggregate_by": aggregate, **video, "save_crops": save_crops,
               "annotate": annotate, "workers": workers, "save_maps": localize, "max_pixels": max_pixels,
               "explain": explain_method if explain else False, "save_explanations": explain}
    if ray is not None:
        from ..inference.ray_engine import predict_to_file

        if output is None:
            raise UsageError("--engine ray keeps rows in part files beside its results file: give --output FILE")
        if report is not None:
            raise UsageError("--report draws each input as its result comes, in this process: leave out "
                             "--engine ray, or --report")
        replicas = engines.on_ray(model, device, precision, batch_size, ray, decide)
        return _summarize(predict_to_file(replicas, sources, Path(output), ray, **predict), output)
    predictor = engines.load_here(model, device, precision, batch_size, decide)
    if localize:
        predictor.config.require_decoder(f"--localize with {model}")
    if explain:
        predictor.config.require_head(f"--explain with {model}")
    header = predictor.run_header(**predict)
    case = None
    if report is not None:
        from ..evaluation.case import CaseReport

        case = CaseReport(report, header, predictor.threshold)
    results = predictor.iter_predict(sources, progress_label="detect", **predict)
    return _write_detections(results, output, header, case)


def _write_detections(results: Iterable[Result], output: str | None, header: dict,
                      case: CaseReport | None = None) -> int:
    """Writes the run's header, then results (to ``output``, or standard output) as they come, each added to the
    ``case`` report, written once all are in; the status says whether any failed."""
    import json

    from ..inference.writers import ResultWriter

    def rows() -> Iterator[dict]:
        for result in results:
            if case is not None:
                case.add(result)
            yield _emit(result.without_arrays(), writer)

    writer = ResultWriter(output, header=header) if output else None
    if writer is None:
        click.echo(json.dumps(header))
    try:
        status = _summarize(rows(), output)
    finally:
        if writer:
            writer.close()
    if case is not None:
        click.echo(f"case report -> {case.write()}", err=True)
    return status


def _emit(result: Result, writer: ResultWriter | None) -> dict:
    """Writes one result (to standard output without a writer) and gives its summary row."""
    if writer:
        writer.write(result)
    else:
        click.echo(result.to_json())
    return result.summary()


def _summarize(rows: Iterable[dict], output: str | None) -> int:
    """The summary line on standard error; the status says whether any input failed."""
    counts = {"fake": 0, "real": 0, "uncertain": 0, "insufficient": 0, "failed": 0}
    for row in rows:
        counts[row["label"] if row["error"] is None and row["label"] else "failed"] += 1
    where = f" -> {output}" if output else ""
    rare = "".join(f"{counts[label]} {label}, " for label in ("uncertain", "insufficient") if counts[label])
    click.echo(f"{counted(sum(counts.values()), 'input')}: {counts['fake']} fake, {counts['real']} real, {rare}"
               f"{counts['failed']} failed{where}", err=True)
    return status_of(counts["failed"])


@click.command(cls=Command, short_help="Map manipulated pixels: a mask and an overlay per input.")
@options.media_inputs
@options.model
@click.option("--output-dir", required=True, type=options.OUTPUT_DIR, metavar="DIR",
              help="gets <input>.mask.png and <input>.overlay.png (videos: <input>.mask/ and <input>.overlay.mp4) "
                   "mirroring the inputs' paths, and results.jsonl")
@options.faces("localize", "none: localize whole images (as DeCLIP does); auto: each aligned face, warped back")
@options.threshold("mean map score at or above which the label is fake")
@options.max_pixels
@options.runtime(16, "images (or faces) per model call")
@options.engine(parts=True)
def localize(inputs: tuple[str, ...], model: str, output_dir: Path, faces: FaceOptions, frames: Sampler,
             decide: dict, max_pixels: int, device: str, precision: str, batch_size: int,
             ray: RayOptions | None) -> int:
    """Map manipulated pixels of images and videos with a model that has a decoder: a mask and an overlay per
    input, and a row per input in results.jsonl.
    """
    sources = options.expand_inputs(inputs, [output_dir])
    predict = {"faces": faces, "frames": frames, "save_maps": output_dir, "max_pixels": max_pixels}
    results_path = output_dir / "results.jsonl"
    if ray is not None:
        from ..inference.ray_engine import predict_to_file
        from ..inference.rows import localization_row

        replicas = engines.on_ray(model, device, precision, batch_size, ray, decide)
        return _summarize_maps(predict_to_file(replicas, sources, results_path, ray, localization_row, **predict),
                               results_path)
    predictor = engines.load_here(model, device, precision, batch_size, decide)
    predictor.config.require_decoder(f"localize with {model}")
    output_dir.mkdir(parents=True, exist_ok=True)
    header = predictor.run_header(**predict)
    return _write_localizations(predictor.iter_predict(sources, progress_label="localize", **predict),
                                results_path, header)


def _write_localizations(results: Iterable[Result], path: Path, header: dict) -> int:
    from ..inference.rows import localization_row
    from ..inference.writers import ResultWriter

    def written() -> Iterator[dict]:
        for result in results:
            row = localization_row(result)
            writer.write_row(row)
            yield row

    with ResultWriter(path, header=header) as writer:
        return _summarize_maps(written(), path)


def _summarize_maps(rows: Iterable[dict], path: Path) -> int:
    count = failed = 0
    for row in rows:
        count, failed = count + 1, failed + (row["error"] is not None)
    click.echo(f"{counted(count, 'input')}: {count - failed} localized, {failed} failed -> {path}", err=True)
    return status_of(failed)
