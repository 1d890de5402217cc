"""Multipart request bodies streamed, part by part, into private temporary files: the size limit is checked
as the bytes arrive (nothing is held in memory), and the files are removed whatever happens.

Each request gets its own folder (mode 0700) inside the service's private temporary folder, and each file
in it is created with mode 0600 under a generated name: no client-supplied name ever becomes a path.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from ..media import MEDIA_SUFFIXES
from .errors import ApiError

FIELD = "files"
MAX_FILES = 1000
DRAIN_BYTES = 64 * 2**20
"""Over the limit, up to this much more of the body is read and dropped before answering 413, so the client is
not cut off mid-send (a socket closed with unread data resets the connection, and the answer with it)."""


@dataclass
class Upload:
    name: str
    """The client's file name, for the rows only (its last path component)."""
    path: Path
    size: int = 0


class Uploads:
    """The files of one request, in its own private folder, removed on exit (also on errors)."""

    def __init__(self, parent: Path):
        self.folder = Path(tempfile.mkdtemp(prefix="request-", dir=parent))
        self.items: list[Upload] = []
        self.other_fields: list[str] = []

    def __enter__(self) -> Uploads:
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_file(self, name: str) -> tuple[Upload, IO[bytes]]:
        if len(self.items) >= MAX_FILES:
            raise ApiError(413, "too many files", {"limit": MAX_FILES})
        descriptor, path = tempfile.mkstemp(prefix="upload-", dir=self.folder)
        upload = Upload(display_name(name, len(self.items)), Path(path))
        self.items.append(upload)
        return upload, os.fdopen(descriptor, "wb")


def display_name(given: str, number: int) -> str:
    """The client's name without folders (either separator) and control characters; ``file-N`` when none."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", re.split(r"[/\\]", given)[-1]).strip()[:255]
    return name if name not in ("", ".", "..") else f"file-{number}"


async def receive(request: Request, uploads: Uploads, limit: int) -> None:
    """Streams the request's ``files`` parts into ``uploads``; 413 past ``limit`` bytes, 422 for a body that
    holds no file (empty, not multipart, no ``files`` part, an empty file)."""
    kind, parameters = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not parameters.get(b"boundary"):
        raise ApiError(422, "no files: send multipart/form-data with one or more 'files' parts",
                       {"content_type": request.headers.get("content-type")})
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and (
            int(declared) > limit + DRAIN_BYTES or request.headers.get("expect", "").lower() == "100-continue"):
        raise _too_large(limit)
    parts = _Parts(uploads)
    parser = MultipartParser(parameters[b"boundary"], parts.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + DRAIN_BYTES:
                break
            if received <= limit:
                parser.write(chunk)
        if received > limit:
            raise _too_large(limit)
        parser.finalize()
    except MultipartParseError as error:
        raise ApiError(422, "malformed multipart body", str(error)) from None
    finally:
        parts.close()
    _check_files(uploads)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "upload too large", {"limit_mb": round(limit / 2**20, 3),
                                              "hint": "send fewer or smaller files per request"})


def _check_files(uploads: Uploads) -> None:
    if not uploads.items:
        raise ApiError(422, "no files: the body holds no 'files' part", {"fields": uploads.other_fields})
    empty = [upload.name for upload in uploads.items if upload.size == 0]
    if empty:
        raise ApiError(422, "empty file", {"files": empty})


class _Parts:
    """python-multipart callbacks: each ``files`` part to a new private file, other fields' names noted."""

    def __init__(self, uploads: Uploads):
        self.uploads = uploads
        self.headers: dict[bytes, bytes] = {}
        self.field = self.value = b""
        self.upload: Upload | None = None
        self.file: IO[bytes] | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.close}

    def part_begin(self) -> None:
        self.headers, self.field, self.value = {}, b"", b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != FIELD:
            if len(self.uploads.other_fields) < 20:
                self.uploads.other_fields.append(name)
            return
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self.upload, self.file = self.uploads.new_file(filename)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is None or self.upload is None:
            return
        self.upload.size += end - start
        self.file.write(data[start:end])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = self.upload = None


def stored_name(number: int, name: str) -> str:
    """The generated name an upload is kept under: its number, the letters, digits, '-' and '_' of the
    client's name (so a folder of maps is legible), and its suffix when an image's or a video's, so that a file
    whose content tells nothing is taken for what its name says, as ``detect`` takes it (``media.kind_of``)."""
    stem, dot, suffix = name.rpartition(".")
    legible = re.sub(r"[^A-Za-z0-9_-]+", "_", stem if dot else name).strip("_")[:40] or "file"
    kept = f".{suffix.lower()}" if dot and f".{suffix.lower()}" in MEDIA_SUFFIXES else ""
    return f"{number:04d}-{legible}{kept}"
