"""Where the tool keeps what it fetches or builds once for later runs: released weights, the service's state, kernels
compiled for this machine (``CLIPFORENSICS_CACHE``, default ``~/.cache/clipforensics``)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE = Path(os.environ.get("CLIPFORENSICS_CACHE", Path.home() / ".cache" / "clipforensics"))
