"""The command's exit statuses (main.py maps errors onto them; commands return the first two)."""

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
