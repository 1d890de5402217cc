"""``train``: a detector from a YAML config."""

from __future__ import annotations

from pathlib import Path

import click

from .status import EXIT_OK
from .suggestions import Command


@click.command(cls=Command, short_help="Train a detector from a YAML config (see configs/).")
@click.option("--config", required=True, type=click.Path(path_type=Path), metavar="YAML",
              help="a preset such as configs/gend-clip-l14-ffpp.yaml")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a field, e.g. --set optim.lr=1e-4 --set trainer.devices=2 (repeatable)")
@click.option("--fresh", is_flag=True,
              help="when trainer.output_dir holds a run, start a new one beside it (DIR-2, DIR-3, ...) "
                   "instead of continuing that run")
def train(config: Path, overrides: tuple[str, ...], fresh: bool) -> int:
    """Train a detector from a YAML config, with fields overridden by --set. Writes the last model, the best
    one by validation and the logs to trainer.output_dir; run the same command again to continue a run that
    stopped. A folder holding a run with another configuration is never rewritten: the command refuses it
    (or, with --fresh, uses a new folder beside it)."""
    from ..training import fit, load_config
    from ..training.runs import read_state, report

    settings = load_config(config, list(overrides))
    before = read_state(Path(settings.trainer.output_dir))
    out = fit(settings, fresh=fresh)
    click.echo(report(out, trained=not before or read_state(out) != before), err=True)
    return EXIT_OK
