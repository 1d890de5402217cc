"""Inputs named by fsspec URLs (``s3://bucket/uploads/``, ``gs://...``, ``https://...``, ``file://...``): a folder
URL is listed like a folder, and a file is read through a temporary local copy, so that decoding stays the
one local path (images and videos alike). The URL's fsspec implementation (``s3fs``, ``gcsfs``) must be
installed, with its credentials, where the inputs are listed and read."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from .errors import MediaError, UsageError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(source: Any) -> bool:
    return isinstance(source, str) and _SCHEME.match(source) is not None


def expand_url(url: str, hidden: Callable[[str], bool]) -> tuple[list[str], int]:
    """A folder URL's files, recursive and sorted, but those with a part of their path below it that is
    ``hidden``, and how many those were; the URL itself when it holds none (so that it fails with its own row).
    A file URL as given."""
    filesystem, path = _filesystem(url)
    try:
        if not filesystem.isdir(path):
            return [url], 0
        everything = sorted(filesystem.find(path))
    except OSError as error:
        raise UsageError(f"{url}: cannot be listed ({error})") from None
    found = [name for name in everything if not any(map(hidden, PurePosixPath(name).relative_to(path).parts))]
    return [filesystem.unstrip_protocol(name) for name in found] or [url], len(everything) - len(found)


@contextmanager
def readable(source: Any) -> Iterator[Any]:
    """A local path to read ``source`` from: ``source`` itself, or a URL's temporary copy (removed after)."""
    if not is_url(source):
        yield source
        return
    filesystem, path = _filesystem(source, MediaError)
    with tempfile.TemporaryDirectory(prefix="clipforensics-") as folder:
        local = Path(folder) / f"input{PurePosixPath(urlparse(source).path).suffix}"
        try:
            filesystem.get_file(path, str(local))
        except OSError as error:
            raise MediaError(f"{source}: cannot be read ({error})") from None
        try:
            yield local
        except MediaError as error:  # said of the URL, not of its copy
            raise MediaError(str(error).replace(str(local), source), error.kind) from None


def _filesystem(url: str, error: type[Exception] = UsageError) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as problem:
        raise error(f"{url}: no fsspec filesystem for it ({problem}); install the one for its scheme "
                    "(s3fs for s3://, gcsfs for gs://)") from None
