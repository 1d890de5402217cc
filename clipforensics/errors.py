"""Exceptions that carry a message meant for the user."""


class ClipForensicsError(Exception):
    """Base class: the message says what went wrong and what to do."""


class UsageError(ClipForensicsError, ValueError):
    """A request that cannot be carried out as given (an option, a config field, a path of the wrong
    kind): the command line answers it with exit status 2. Also a ``ValueError`` for API callers."""


class OptionError(UsageError):
    """One option's value refused by the type that owns it (a ``Sampler``, a ``Band``): ``option`` is its name
    as a keyword (``stride``, ``operating_point``), so that each edge can name it its own way (``--stride``,
    the request field ``stride``) beside the same message."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


class CheckpointError(ClipForensicsError):
    """A checkpoint cannot be read or does not fit the model."""


class MediaError(ClipForensicsError):
    """An input image or video cannot be decoded or is outside the limits; ``kind`` says what the input
    was taken for (image, video, audio, other: see ``media.kind_of``), when known."""

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


class DownloadError(ClipForensicsError):
    """Published weights could not be fetched (offline, or the source is gone)."""
