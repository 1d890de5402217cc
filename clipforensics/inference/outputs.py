"""Where each input's files go in an output folder, so that no output lands on an input or on another
input's output.

An input's name there is its path relative to the inputs' common folder (sample sets repeat file names
across folders) without its suffix, or with it when another input shares the name without it (``a.png``
and ``a.jpg`` become ``a.png`` and ``a.jpg``, so ``a.png.mask.png`` and ``a.jpg.mask.png``); in-memory inputs
are ``input-N``. A file that would still land on an input (an output folder inside the inputs' folder) gets
``.out`` before its ending.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ..errors import UsageError

OUTPUT_MARK = ".out"


class OutputNames:
    def __init__(self, inputs: list):
        paths = {number: _absolute(source) for number, source in enumerate(inputs) if isinstance(source, (str, Path))}
        root = Path(os.path.commonpath([str(p.parent) for p in paths.values()])) if paths else Path.cwd()
        plain = {number: path.relative_to(root).with_suffix("") for number, path in paths.items()}
        shared = Counter(plain.values())
        self._stems = [
            (path.relative_to(root) if shared[plain[number]] > 1 else plain[number]) if (path := paths.get(number))
            else Path(f"input-{number:05d}")
            for number in range(len(inputs))
        ]
        self._inputs = set(paths.values())

    def stem(self, number: int) -> Path:
        return self._stems[number]

    def file(self, folder: Path, number: int, ending: str) -> Path:
        """``folder/<name><ending>`` for input ``number``, never an input's own path."""
        stem = self._stems[number]
        return self.safe(folder / stem.parent / f"{stem.name}{ending}")

    def safe(self, path: Path) -> Path:
        """``path``, or ``<name>.out<suffix>`` beside it when ``path`` is one of the inputs."""
        while _absolute(path) in self._inputs:
            path = path.with_name(f"{path.stem}{OUTPUT_MARK}{path.suffix}")
        return path


def _absolute(path: str | Path) -> Path:
    """The path with links resolved where they lead somewhere; a broken link, a link loop or a file not yet
    written is named where it stands (in its folder, resolved), not where a broken link points."""
    path = Path(path)
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        try:
            return path.absolute().parent.resolve() / path.name
        except (OSError, RuntimeError):
            return Path(os.path.abspath(path))


def output_folder(folder: str | Path | None, option: str) -> Path | None:
    """An output folder as given, refused when it is an existing file."""
    if folder is None:
        return None
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: is a file, not a folder: give a folder for the output files")
    return folder
