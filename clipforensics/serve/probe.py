"""Whether an uploaded file is an image or a video, judged by its content (never by its name): its leading
bytes first, then Pillow and PyAV for what has no known signature. The suffix it is stored under follows
from that, so that the predictor reads it as the CLI reads such a file (a damaged video is still a video,
and gets its row with the error)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ApiError

IMAGE_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", ".png"),
    (0, b"\xff\xd8\xff", ".jpg"),
    (0, b"GIF87a", ".gif"),
    (0, b"GIF89a", ".gif"),
    (0, b"II*\x00", ".tiff"),
    (0, b"MM\x00*", ".tiff"),
)
VIDEO_SIGNATURES = (
    (0, b"\x1a\x45\xdf\xa3", ".mkv"),
    (0, b"FLV\x01", ".flv"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", ".wmv"),
    (0, b"\x00\x00\x01\xba", ".mpg"),
    (0, b"\x00\x00\x01\xb3", ".mpg"),
)
ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
PILLOW_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp",
                  "TIFF": ".tiff"}
PROBED_VIDEO = ".video"
"""Suffix of a video known only to FFmpeg's probe: the predictor then tries it as an image, then as a video."""


@dataclass(frozen=True)
class Kind:
    kind: str
    """'image' or 'video'."""
    suffix: str


def identify(path: Path, head: bytes, name: str) -> Kind:
    """The file's kind, or a 415 ``ApiError`` naming it when it is neither an image nor a video."""
    kind = _by_signature(head)
    if kind is not None and kind.kind == "video" and _audio_only(path):
        raise _unsupported(name, "an audio file without a video stream")
    kind = kind or _by_pillow(path) or _by_pyav(path)
    if kind is None:
        raise _unsupported(name, "neither an image nor a video (judged by its content, not its name)")
    return kind


def _unsupported(name: str, reason: str) -> ApiError:
    return ApiError(415, "unsupported media type", {"file": name, "reason": reason})


def _by_signature(head: bytes) -> Kind | None:
    for kind, signatures in (("image", IMAGE_SIGNATURES), ("video", VIDEO_SIGNATURES)):
        for offset, signature, suffix in signatures:
            if head[offset : offset + len(signature)] == signature:
                return Kind(kind, suffix)
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "):
        return Kind("image", ".webp") if head[8:12] == b"WEBP" else Kind("video", ".avi")
    if head[4:8] in ISO_BOXES:
        return Kind("video", ".mp4")
    return None


def _by_pillow(path: Path) -> Kind | None:
    """Formats with a weak signature (BMP's two letters) are confirmed by Pillow's header parser."""
    from PIL import Image

    try:
        with Image.open(path, formats=list(PILLOW_FORMATS)) as image:
            return Kind("image", PILLOW_FORMATS[image.format])
    except (OSError, ValueError, SyntaxError, KeyError):
        return None


def _by_pyav(path: Path) -> Kind | None:
    streams = _streams(path)
    return Kind("video", PROBED_VIDEO) if streams is not None and streams[0] else None


def _audio_only(path: Path) -> bool:
    streams = _streams(path)
    return streams is not None and not streams[0] and streams[1]


def _streams(path: Path) -> tuple[bool, bool] | None:
    """(has video, has audio) as FFmpeg reads the file, or None when it cannot open it (damaged, unknown)."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.video), bool(container.streams.audio)
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None
