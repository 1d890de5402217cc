"""``evaluate`` and ``compare``: a model scored over a dataset, and runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..inference.verdicts import VIDEO_SCORES
from . import engines, options
from .status import EXIT_OK, status_of
from .suggestions import Choice, Command

if TYPE_CHECKING:
    from ..evaluation import Perturbation
    from ..inference.ray_engine import RayOptions


@click.command(cls=Command, short_help="Score a dataset of face crops: predictions, metrics, report.")
@options.model
@click.option("--data", required=True, multiple=True, metavar="SPEC",
              help="<dataset>/<source>/<video>/<frame> folders, Dolos folders, list files (.txt) or manifests "
                   "(.csv, .json); repeat for several")
@click.option("--output-dir", required=True, type=options.OUTPUT_DIR, metavar="DIR",
              help="gets predictions.csv, metrics.json, report.html, report.md and plots/")
@click.option("--name", metavar="NAME", help="the run's name in reports and comparisons (default: the output folder's)")
@click.option("--task", type=Choice(("detection", "localization")), default="detection", show_default=True,
              help="localization: maps against masks (IoU, F1, pixel AP), for a model with a decoder")
@click.option("--split", metavar="NAME",
              help="keep one split of Dolos folders or DeepfakeBench JSON (train, valid, test)")
@click.option("--perturb", type=options.PerturbationSpec(), metavar="SPEC",
              help="degrade frames first: jpeg:Q, blur:K,S (kernel, sigma) or resize:P (percent)")
@click.option("--video-score", type=Choice(VIDEO_SCORES), metavar="people|largest",
              help="the video rule, recorded with the metrics: largest (the papers' protocol) by default for the "
                   "papers' published weights (zoo names), people otherwise; a video of face crops is one person, "
                   "scored by its frames' mean either way")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True, metavar="N",
              help="replicates of the 95% intervals of AUROC, AP, EER and TPR@FPR (resampling videos at video level, "
                   "frames at frame level, stratified by label, fixed seed); 0 for none")
@options.runtime(32, "face crops per model call")
@options.engine(parts=False)
def evaluate(model: str, data: tuple[str, ...], output_dir: Path, name: str | None, task: str, split: str | None,
             perturb: Perturbation | None, video_score: str | None, bootstrap: int, device: str, precision: str,
             batch_size: int, ray: RayOptions | None) -> int:
    """Score a model over datasets of face crops: predictions, frame- and video-level metrics per dataset
    and source (or, for localization, map metrics against masks), and an HTML and Markdown report."""
    from ..evaluation import Evaluation, load_samples, predict_samples, write_evaluation
    from ..uncertainty import Bootstrap
    from ..evaluation.explained import explained_examples

    samples = load_samples(data, split)
    examples = []
    if ray is not None:
        from ..evaluation.on_ray import predict_samples_on_ray

        replicas = engines.on_ray(model, device, precision, batch_size, ray)
        rows, provenance = predict_samples_on_ray(replicas, samples, task, perturb, ray)
    else:
        predictor = engines.load_here(model, device, precision, batch_size)
        if task == "localization":
            predictor.config.require_decoder(f"--task localization with {model}")
        rows, provenance = predict_samples(predictor, samples, task, perturb), predictor.provenance
        if task == "detection":
            examples = explained_examples(predictor, rows, perturb)
    settings = {"video_score": video_score or default_video_score(model), "bootstrap": Bootstrap(bootstrap),
                "examples": examples} if task == "detection" else {}
    evaluation = Evaluation(task, rows, model=dict(provenance), perturbation=str(perturb) if perturb else None,
                            **settings)
    write_evaluation(evaluation, output_dir, name or output_dir.resolve().name)
    for line in evaluation.summary_lines(output_dir):
        click.echo(line, err=True)
    return status_of(len(evaluation.failed))


def default_video_score(model: str) -> str:
    """``largest`` for the papers' published weights, whose video-level numbers the presets in configs/ reproduce
    with the papers' protocol; ``people`` for any other model, as ``detect`` scores videos."""
    from ..hub.zoo import ZOO

    return "largest" if model in ZOO else "people"


def _report_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in (".md", ".html"):
        raise click.BadParameter(f"must end in .md or .html, not {str(value)!r}", ctx, param)
    return value


@click.command(cls=Command, short_help="Runs' metrics side by side (AUROC, AP, EER).")
@click.argument("runs", nargs=-1, required=True, metavar="METRICS...")
@click.option("--level", type=Choice(("video", "frame")), default="video", show_default=True,
              help="which table to compare")
@click.option("--output", type=options.OUTPUT_FILE, metavar="F.md|F.html", callback=_report_file,
              help="also write the table as Markdown (.md) or HTML (.html)")
def compare(runs: tuple[str, ...], level: str, output: Path | None) -> int:
    """Put runs side by side: their metrics.json files, or the folders holding them (what evaluate wrote). A
    warning goes to standard error when the runs were not evaluated on the same data, or (video level) their
    videos were scored by different rules."""
    from ..evaluation.compare import (comparison, data_differences, html_page, load_runs, markdown_table,
                                      rule_differences, text_table)

    loaded = load_runs(list(runs))
    for line in data_differences(loaded, level) + rule_differences(loaded, level):
        click.echo(f"clipforensics: warning: {line}; the differences are not like for like", err=True)
    table = comparison(loaded, level)
    click.echo(text_table(*table))
    title = f"{level.capitalize()}-level metrics (%)"
    if output and output.suffix.lower() == ".html":
        output.write_text(html_page(title, *table))
    elif output:
        output.write_text(f"# {title}\n\n{markdown_table(*table)}\n")
    return EXIT_OK
