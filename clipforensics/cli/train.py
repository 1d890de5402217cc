"""``train``: a detector from a YAML config."""

from __future__ import annotations

from pathlib import Path

import click

from .status import EXIT_OK
from .suggestions import Command


@click.command(cls=Command, short_help="Train a detector from a YAML config (see configs/).")
@click.option("--config", type=click.Path(path_type=Path), metavar="YAML",
              help="a preset such as configs/gend-clip-l14-ffpp.yaml")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a field, e.g. --set optim.lr=1e-4 --set trainer.devices=2 (repeatable)")
def train(config: Path | None, overrides: tuple[str, ...]) -> int:
    """Train a detector from a YAML config, with fields overridden by --set; writes the best and the last
    model and the logs."""
    from ..training import fit, load_config

    out = fit(load_config(config, list(overrides)))
    click.echo(f"best and last models: {out / 'best'}, {out / 'last'}; logs: {out / 'logs'}", err=True)
    return EXIT_OK
