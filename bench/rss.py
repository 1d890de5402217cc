"""What the benchmarks report of this process and machine (Linux /proc): resident memory, the CPU's name."""

from pathlib import Path


def current_rss_mb() -> float:
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """VmHWM, not getrusage's ru_maxrss: the latter survives exec, so a child started by a parent that
    once held more memory would report the parent's peak."""
    return _status_mb("VmHWM:")


def _status_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
