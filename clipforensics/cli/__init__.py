"""The ``clipforensics`` command on click: a thin map onto the Python API.

``main(argv)`` runs it from Python and returns the exit status; ``python -m clipforensics.cli`` and the
installed ``clipforensics`` script run it from a shell. Nothing here imports torch until a command runs.
"""

from .main import main

__all__ = ["main"]
