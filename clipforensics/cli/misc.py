"""``zoo`` and ``demo``: what there is to load, and an offline tour."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import UsageError
from .status import EXIT_FAILED, EXIT_OK
from .suggestions import Command

if TYPE_CHECKING:
    from ..hub.zoo import ZooEntry


@click.command(cls=Command, short_help="List the named published weights; --verify checks the cached files.")
@click.argument("name", required=False)
@click.option("--verify", is_flag=True,
              help="check the cached files of NAME (default: of every entry) against their pinned sha256; a file "
                   "that does not match is deleted, and the exit status is 1")
def zoo(name: str | None, verify: bool) -> int:
    """List the named published weights (NAME: that one only): each name works as --model, downloaded on first use
    and checked against the sha256 pinned for each of its files (a download that does not match is deleted; a
    file with no known hash is used with a warning that prints its sha256)."""
    from ..hub import zoo as hub

    if name is not None and name not in hub.ZOO:
        near = hub.closest_names(name)
        raise UsageError(f"{name!r} is not a zoo name" + (f"; did you mean {' or '.join(near)}?" if near else
                                                           f" (known: {', '.join(hub.ZOO)})"))
    entries = [hub.ZOO[name]] if name else list(hub.ZOO.values())
    if not verify:
        for entry in entries:
            click.echo(f"{entry.name:<24} {entry.summary}\n{'':<24} {entry.address} ({_pinned(entry)})")
        return EXIT_OK
    checks = [check for entry in entries for check in hub.verify(entry)]
    for check in checks:
        click.echo(check.line())
    return EXIT_FAILED if any(check.status == "mismatch" for check in checks) else EXIT_OK


def _pinned(entry: ZooEntry) -> str:
    """How many of an entry's files have a pinned sha256."""
    known, files = len(entry.pinned), len(entry.files)
    return "sha256 pinned" if known == files else "sha256 unpinned" if not known else (
        f"sha256 pinned for {known} of {files} files")


@click.command(cls=Command, short_help="The offline tour: data, training, evaluation, detection, localization.")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True,
              metavar="DIR", help="where the demo writes its files (index.html links them all)")
@click.option("--serve", is_flag=True, help="then serve the trained models on http://127.0.0.1:8000 until stopped")
@click.option("--quick", is_flag=True, help="the same steps on fewer frames for fewer epochs (a check that it runs)")
def demo(workdir: Path, serve: bool, quick: bool) -> int:
    """The whole tool offline in a few minutes: videos made from a built-in photo, faces found and aligned,
    self-blended pseudo-fakes, a small detector and a small localizer trained for a minute, evaluated, then
    detect and localize on a photo, a cat, a video and a damaged file. The models prove the pipeline, not
    detection skill; the released weights are a --model name away (see: clipforensics zoo)."""
    from ..demo import FULL, QUICK, run
    from .status import run_command

    group = click.get_current_context().find_root().command
    return run(workdir, lambda argv: run_command(group, argv), serve, QUICK if quick else FULL)
