"""The command's exit statuses, and the one place where errors become them (commands return the first two)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click

from ..errors import ClipForensicsError, UsageError

DEBUG_VARIABLE = "CLIPFORENSICS_DEBUG"
PREFIX = "clipforensics: "
"""What every error of the command line starts with, Click's own included."""

EXIT_OK = 0
"""Every input was processed."""
EXIT_FAILED = 1
"""Some inputs failed (each has its error in the output), or the run could not be carried out."""
EXIT_USAGE = 2
"""The command line asks for something that cannot be done as given."""
EXIT_INTERNAL = 3
"""An unexpected error: a bug to report, with the traceback CLIPFORENSICS_DEBUG=1 shows."""


def status_of(failed: int) -> int:
    """The exit status of a run in which ``failed`` inputs failed."""
    return EXIT_FAILED if failed else EXIT_OK


def run_command(command: click.Command, argv: Sequence[str] | None) -> int:
    """Runs ``command`` on the command line ``argv`` (None: the process's) and returns its exit status."""
    try:
        with _warnings_on_stderr():
            status = command.main(list(argv) if argv is not None else None, prog_name="clipforensics",
                                  standalone_mode=False)
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


@contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """What the library logs (a folder's hidden files not scanned, the service's events) on standard error,
    after the prefix, while a command runs."""
    handler = logging.StreamHandler()  # standard error as it is now
    handler.setFormatter(logging.Formatter(f"{PREFIX}%(message)s"))
    logger = logging.getLogger("clipforensics")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def say(message: str) -> None:
    """An error on standard error, after the one prefix every error of the command line has."""
    click.echo(f"{PREFIX}{message}", err=True)
