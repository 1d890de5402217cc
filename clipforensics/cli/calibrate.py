"""``calibrate``: a detector's temperature and operating thresholds fitted on validation data."""

from __future__ import annotations

from pathlib import Path

import click

from ..metrics import AGGREGATES
from . import options
from .status import EXIT_OK, PREFIX
from .suggestions import Choice, Command


@click.command(cls=Command, short_help="Fit a detector's temperature and thresholds on validation data.")
@options.model
@click.option("--data", required=True, multiple=True, metavar="SPEC",
              help="validation data as evaluate reads it: <dataset>/<source>/<video>/<frame> folders, list files "
                   "(.txt) or manifests (.csv, .json); repeat for several")
@click.option("--output", required=True, type=options.OUTPUT_DIR, metavar="DIR",
              help="the calibrated model folder to write (new or empty): the weights, config.json with the "
                   "calibration, calibration.json and reliability.png")
@click.option("--level", type=Choice(("video", "frame")), default="video", show_default=True,
              help="fit and pick thresholds on videos (the frames that share a video id, scored by their aggregate) "
                   "or on frames")
@click.option("--target-fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01,
              show_default=True, metavar="RATE", help="the false positive rate of the fpr@ threshold")
@click.option("--aggregate", type=Choice(AGGREGATES), default="mean", show_default=True,
              help="a video's score from its frames' calibrated scores")
@click.option("--split", metavar="NAME",
              help="keep one split of Dolos folders or DeepfakeBench JSON (train, valid, test)")
@options.runtime(32, "face crops per model call")
def calibrate(model: str, data: tuple[str, ...], output: Path, level: str, target_fpr: float, aggregate: str,
              split: str | None, device: str, precision: str, batch_size: int) -> int:
    """Fit a detector's calibration on validation data of aligned face crops: the temperature T that makes
    sigmoid(logit(p_fake) / T) best predict the labels (negative log-likelihood at --level), and the
    thresholds eer, fpr@X% and f1 on the calibrated scores. Writes a new model folder with the same weights
    and the calibration in its config.json (the model given is left as it is; a calibrated one is refitted
    from its raw scores); load it to get calibrated p_fake, labelled at its eer threshold. A warning goes to
    standard error when the fpr@ threshold or the ECE rests on too few samples (fewer than 3 / rate reals; fewer
    than 15 a bin on average), and calibration.json records those counts."""
    from ..evaluation.calibration import calibrate as run_calibration

    result = run_calibration(model, data, output, level, target_fpr, aggregate, split, device, precision, batch_size)
    for line in result.summary_lines():
        click.echo(line)
    for line in result.warnings:
        click.echo(f"{PREFIX}warning: {line}", err=True)
    click.echo(f"calibrated model -> {output}", err=True)
    return EXIT_OK
