"""``zoo`` and ``demo``: what there is to load, and an offline tour."""

from __future__ import annotations

from pathlib import Path

import click

from .status import EXIT_OK
from .suggestions import Command


@click.command(cls=Command, short_help="List the named published weights.")
def zoo() -> int:
    """List the named published weights: each name works as --model, downloaded on first use."""
    from ..hub.zoo import ZOO

    for entry in ZOO.values():
        click.echo(f"{entry.name:<24} {entry.summary}\n{'':<24} {entry.address}")
    return EXIT_OK


@click.command(cls=Command, short_help="An offline tour on built-in images.")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path(".demo"), show_default=True, metavar="DIR",
              help="where the demo writes its files")
def demo(workdir: Path) -> int:
    """An offline tour on built-in images and a video: a tiny detector is built, saved and reloaded, then
    faces are found, aligned and scored, and a tiny localizer maps a face."""
    from ..demo import run

    return run(workdir)
