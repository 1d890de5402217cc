"""Whether a request holds media: each upload judged by its content with ``media.kind_by_content``, the judgement
``clipforensics detect`` makes of a file, so that the service and the CLI decide a file's kind in one place. A
request with an image or a video among its files is taken, and every file gets its row (the others, the kind and
error ``detect`` gives them: the predictor reads each as the CLI does); a request with neither is refused (415),
each file with that kind and error."""

from __future__ import annotations

from pathlib import Path

from ..errors import MediaError
from ..media import kind_by_content, kind_of, open_media
from .errors import ApiError
from .rows import as_uploaded

MEDIA = ("image", "video")


def is_media(path: Path) -> bool:
    """Whether the file is an image or a video by its content: ``path`` must have no suffix, since FFmpeg takes any
    file named .jpg for an image (its image2 reader goes by the name)."""
    return kind_by_content(path) in MEDIA


def refusal(received: list[tuple[str, Path]]) -> ApiError:
    """The 415 of a request none of whose uploads (``(name, stored path)``) is an image or a video."""
    return ApiError(415, "unsupported media type: no file is an image or a video (judged by content, not by name)",
                    [_refusal(name, path) for name, path in received])


def _refusal(name: str, path: Path) -> dict:
    """The kind and error ``detect`` gives the file: opening it fails before anything is decoded."""
    try:
        open_media(path)
    except MediaError as error:
        return {"file": name, "kind": error.kind, "error": as_uploaded(str(error), name, path)}
    return {"file": name, "kind": kind_of(path), "error": None}
