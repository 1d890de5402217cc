"""Resident memory of this process, for the benchmarks (Linux /proc and getrusage)."""

import resource
from pathlib import Path


def current_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM, and with it ru_maxrss)."""
    Path("/proc/self/clear_refs").write_text("5")
