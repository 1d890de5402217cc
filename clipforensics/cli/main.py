"""The ``clipforensics`` group and its commands; ``main(argv)`` runs it."""

from __future__ import annotations

from collections.abc import Sequence

import click

from .. import __version__
from .calibrate import calibrate
from .data import preprocess
from .detect import detect, localize
from .evaluate import compare, evaluate
from .misc import demo, zoo
from .serve import serve
from .status import DEBUG_VARIABLE, run_command
from .suggestions import Group
from .train import train

EPILOG = f"""\b
Exit status:
  0  every input was processed
  1  some inputs failed (each has its error in the output), or the run could not be done
  2  usage error: an option, a value or a combination that cannot be used as given
  3  internal error: a bug; {DEBUG_VARIABLE}=1 shows its traceback

Run 'clipforensics COMMAND --help' for a command's options."""


@click.group(cls=Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                                              "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="clipforensics", message="%(prog)s %(version)s")
def cli() -> None:
    """Face deepfake detection and manipulation localization on CLIP's vision encoder."""


for command in (detect, localize, preprocess, train, evaluate, compare, calibrate, serve, zoo, demo):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: the process's) and returns its exit status."""
    return run_command(cli, argv)
