"""An input file's sha256, taken from the bytes its decoder reads rather than in a pass of its own.

``HashingFile`` is the file object the decoders (Pillow, PyAV) are given: every byte read at the hashed
frontier goes into the digest, in file order. ``sha256()`` reads on from the frontier to the end, so what the
decoder never needed (a video's frames after the last one sampled, an image's trailing metadata) is read once,
there; only what a decoder read out of order (a container's index at the end of the file, read first) is read
twice. Memory holds one chunk at a time, however large the file.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

CHUNK = 1 << 20
"""Bytes read at once to finish a digest."""
BUFFER = 1 << 16
"""The decoders' read buffer: small, as a decoder that seeks (a container index at the end) drops it."""


class HashingFile(io.RawIOBase):
    """A file opened for reading whose bytes are hashed as they are read (see the module)."""

    def __init__(self, path: str | Path):
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with this object
        self._digest = hashlib.sha256()
        self._hashed = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        position = self._file.tell()
        count = self._file.readinto(buffer)
        if count and position <= self._hashed < position + count:
            self._digest.update(memoryview(buffer)[self._hashed - position : count])
            self._hashed = position + count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def sha256(self) -> str:
        """The whole file's digest: the bytes after the frontier are read now (the position is kept)."""
        position = self._file.tell()
        self._file.seek(self._hashed)
        while chunk := self._file.read(CHUNK):
            self._digest.update(chunk)
            self._hashed += len(chunk)
        self._file.seek(position)
        return self._digest.hexdigest()

    def close(self) -> None:
        self._file.close()
        super().close()


def open_hashed(path: str | Path) -> tuple[io.BufferedReader, HashingFile]:
    """A buffered reader of ``path`` for a decoder, and the ``HashingFile`` under it that gives the digest."""
    raw = HashingFile(path)
    return io.BufferedReader(raw, BUFFER), raw
