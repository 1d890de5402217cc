"""The ``clipforensics`` group, its commands, and the one place where errors become exit statuses."""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from .. import __version__
from ..errors import ClipForensicsError, UsageError
from .calibrate import calibrate
from .data import preprocess
from .detect import detect, localize
from .evaluate import compare, evaluate
from .misc import demo, zoo
from .serve import serve
from .status import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from .suggestions import Group
from .train import train

DEBUG_VARIABLE = "CLIPFORENSICS_DEBUG"
PREFIX = "clipforensics: "

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
    try:
        status = cli.main(list(argv) if argv is not None else None, prog_name="clipforensics", standalone_mode=False)
    except click.ClickException as error:
        if isinstance(error, click.UsageError) and error.ctx is not None:
            click.echo(f"{error.ctx.get_usage()}\nTry '{error.ctx.command_path} --help' for help.\n", err=True)
        say(error.format_message())
        return error.exit_code
    except click.Abort:
        say("stopped (Ctrl-C)")
        return EXIT_FAILED
    except UsageError as error:
        say(str(error))
        return EXIT_USAGE
    except (ClipForensicsError, OSError) as error:
        say(str(error))
        return EXIT_FAILED
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        say(f"internal error: {type(error).__name__}: {error}\n"
            f"  (run again with {DEBUG_VARIABLE}=1 to see the traceback, and please report it)")
        return EXIT_INTERNAL
    return status or EXIT_OK


def say(message: str) -> None:
    """An error on standard error, after the one prefix every error of the command line has."""
    click.echo(f"{PREFIX}{message}", err=True)
