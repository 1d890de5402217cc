"""``preprocess``: raw videos and images to the training layout of aligned face crops."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..words import counted
from . import options
from .status import status_of
from .suggestions import Choice, Command

if TYPE_CHECKING:
    from ..faces.options import FaceOptions
    from ..media import Sampler


@click.command(cls=Command, short_help="Videos and images to the training layout of face crops.")
@options.inputs
@click.option("--output", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="root of <dataset>/<source>/<video>/<frame>.png, with manifest.csv and summary.json")
@click.option("--dataset", required=True, metavar="NAME", help="dataset name, e.g. FF or CDFv2")
@click.option("--source", metavar="NAME", help="source name (default: the folder holding each video)")
@click.option("--label", type=Choice(("real", "fake")),
              help="default: real when the source's name says so, else fake")
@click.option("--masks", type=click.Path(path_type=Path), metavar="DIR",
              help="folder of manipulation-mask videos named like the inputs")
@click.option("--crop-size", type=options.CropSize(), default=256, show_default=True,
              help="side of the crops in pixels, or native (GenD keeps the face's own size)")
@click.option("--workers", type=options.POSITIVE, metavar="N", default=1, show_default=True,
              help="videos processed in parallel")
@click.option("--overwrite", is_flag=True,
              help="redo every input: those a previous run finished with the same settings, and those it made with "
                   "other settings (refused without it)")
@options.faces(None)
def preprocess(inputs: tuple[str, ...], output: Path, dataset: str, source: str | None, label: str | None,
               masks: Path | None, crop_size: int | None, workers: int, overwrite: bool, faces: FaceOptions,
               frames: Sampler) -> int:
    """Turn videos and images (files, or folders searched recursively) into aligned face crops in the
    training layout, with a manifest. Images and videos are told by their content, as detect tells them; files in
    a folder that are neither (a dataset's metadata.json, its lists) are named in a warning, not preprocessed, and
    hidden files and folders are not scanned. A rerun continues where a killed one stopped: inputs finished with the
    same settings are kept, inputs that failed are always tried again (there is no cache of failures), and a
    rerun with other settings than an input's frames were made with is refused (exit status 2, naming the settings
    that differ; --overwrite redoes them). Exit status 1 when some input still has no frames."""
    import dataclasses
    import json

    from ..data.preprocess import plan_jobs, recorded_outcomes, run_jobs, write_manifest

    faces = dataclasses.replace(faces, crop_size=crop_size, policy="mask" if masks else faces.policy)
    jobs = plan_jobs(inputs, output, dataset, source, label, masks)
    outcomes = list(run_jobs(jobs, faces, frames, workers=workers, overwrite=overwrite))
    summary = write_manifest(recorded_outcomes(output), output / "manifest.csv")
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    failed = [outcome for outcome in outcomes if not outcome.rows]
    kept, faceless = sum(len(o.rows) for o in outcomes), sum(o.faceless for o in outcomes)
    click.echo(f"{counted(len(outcomes), 'input')}: {counted(kept, 'frame')} kept, "
               f"{counted(faceless, 'frame')} without a face, {len(failed)} failed "
               f"-> {output / 'manifest.csv'}", err=True)
    for outcome in failed:
        click.echo(f"  {outcome.media}: {outcome.error or 'no frames'}", err=True)
    return status_of(len(failed))
