"""Decoding inputs: what a file holds (``kind_of``), images to RGB, videos to sampled frames, folders to sorted
file lists; limits and clear errors."""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import warnings
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .channels import made_ahead
from .errors import MediaError, OptionError, UsageError
from .hashing import HashingFile, open_hashed
from .urls import expand_url, is_url
from .words import counted

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif", ".heic",
                            ".heif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
"""The names of images and videos: ``kind_of`` asks a file's name only when its content does not say."""
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
IDENTIFY_ONLY = frozenset({"MPEG", "BUFR", "GRIB", "HDF5", "WMF"})
"""Formats Pillow recognises but does not decode (an MPEG-1 video stream, scientific data, Windows metafiles)."""
MAX_IMAGE_PIXELS = 100_000_000
MAX_VIDEO_FRAMES = 100_000
DECODED_AHEAD = 2
"""Sampled frames a video's decoding thread runs ahead of their use (finding faces in them, while the next ones
decode): at most this many frames and the two in hand are held."""

log = logging.getLogger(__name__)

Kind = Literal["image", "video", "audio", "other"]


def kind_of(path: str | Path) -> Kind:
    """What a file holds, judged by its content whatever its name (``kind_by_content``). The name decides only
    what the content cannot tell: a file that neither reads (damaged, empty, missing, not a regular file) is the
    image or video its suffix names, so that opening it fails with that kind's error, and is 'other' without such
    a suffix."""
    path = Path(path)
    found = kind_by_content(path)
    if found:
        return found
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else "other"


def kind_by_content(path: str | Path) -> Kind | None:
    """What a file's content says it holds: Pillow's header parser first (HEIC and AVIF included), then FFmpeg's
    probe of its streams (audio: streams of sound and none of pictures); neither decodes the file. None when
    neither reads it (or it is no regular file)."""
    path = Path(path)
    if not path.is_file():
        return None
    return "image" if _pillow_identifies(path) else _ffmpeg_kind(path)


def _pillow_identifies(path: Path) -> bool:
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.format not in IDENTIFY_ONLY
    except Image.DecompressionBombError:
        return True
    except (OSError, SyntaxError, ValueError, EOFError):
        return False


def _ffmpeg_kind(path: Path) -> Kind | None:
    """'video' or 'audio' as FFmpeg reads the file's streams; 'image' when it reads an image format (through its
    ``image2`` or ``*_pipe`` demuxers) that Pillow did not; None when it reads neither."""
    import av

    try:
        with av.open(str(path)) as container:
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                return "image"
            return "video" if container.streams.video else "audio" if container.streams.audio else None
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None


@functools.cache
def _register_heif() -> None:
    """HEIC and HEIF through pillow-heif (AVIF is Pillow's own): registered with Pillow once, on the first image
    read, so that importing the package stays light."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def load_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An image file as 8-bit RGB, EXIF orientation applied; ``MediaError`` (of kind image) says why it cannot be."""
    return read_image(path, max_pixels)[0]


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, str]:
    """``load_image``'s image and the file's sha256, from the one read that decodes it (``hashing``)."""
    path = Path(path)
    _register_heif()
    try:
        file, hashed = open_hashed(path)
        with file, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(file) as image:
                _check_size(image, max_pixels, path)
                image.load()
                return to_rgb(ImageOps.exif_transpose(image)), hashed.sha256()
    except MediaError:
        raise
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file", "image") from None
    except IsADirectoryError:
        raise MediaError(f"{path}: is a folder, not an image", "image") from None
    except UnidentifiedImageError:
        size = path.stat().st_size
        what = "empty file" if size == 0 else "not an image PIL can decode"
        raise MediaError(f"{path}: {what}", "image") from None
    except Image.DecompressionBombError as error:
        raise MediaError(f"{path}: {error}", "image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise MediaError(f"{path}: damaged image ({error})", "image") from None


def _check_size(image: Image.Image, max_pixels: int, path: Path) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise MediaError(
            f"{path}: {width}x{height} pixels exceeds the limit of {max_pixels:,} "
            "(if the file is trusted, raise the limit with --max-pixels, or max_pixels= in Python)", "image"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F) to 8-bit RGB; alpha is dropped, not blended."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * 255.0 / peak + 0.5, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def expand_sources(sources: Iterable[str | Path]) -> list[Path | str]:
    """The inputs as files: a file stays as given; a folder becomes every file in it, recursive and sorted;
    ``@list.txt`` becomes the paths it lists (see ``read_path_list``), each expanded in turn. An fsspec URL
    (``s3://...``) stays a URL, a folder URL becomes its files' (see ``urls``). What each file holds is left to
    the reader (``kind_of``): an image, a video, audio or anything else gets its row.

    Nothing is dropped without a word: a link that cannot be resolved (dangling, or a loop) is kept, given
    directly or found in a folder, and so is a folder with no file in it, so that reading each fails with its
    own error while the other inputs go on. A folder's hidden files and folders (names starting with '.': .git,
    .DS_Store, macOS's ._ copies) and its links to folders are not scanned, and one warning per folder counts them.
    """
    paths: list[Path | str] = []
    for source in sources:
        listed = read_path_list(Path(source[len(LIST_PREFIX) :])) if isinstance(source, str) and \
            source.startswith(LIST_PREFIX) else [source]
        for item in listed:
            paths.extend(_expand_url(item) if is_url(item) else _expand_one(Path(item)))
    return paths


LIST_PREFIX = "@"
"""``@list.txt`` as an input: the paths listed in the file."""


def read_path_list(path: Path) -> list[Path | str]:
    """The paths of a list file, one a line; blank lines and ``#`` comments are skipped and relative
    paths are taken against the list file's folder (URLs are kept as written). A list that cannot be read
    is a ``UsageError``."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise UsageError(f"{LIST_PREFIX}{path}: cannot read the list file ({reason}); give a text file "
                         "with one path a line") from None
    return [line if is_url(line) else path.parent / line for line in parse_path_lines(text)]


def parse_path_lines(text: str) -> list[str]:
    """Paths one a line, without blank lines and ``#`` comments, as written (relative ones unresolved)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _expand_one(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    found: list[Path] = []
    hidden_files = hidden_folders = folder_links = 0

    def unreadable(error: OSError) -> None:  # a folder that cannot be listed gets its row, saying so
        found.append(Path(error.filename))

    for folder, folders, files in os.walk(path, onerror=unreadable):
        hidden_folders += sum(map(_hidden, folders))
        folder_links += sum(not _hidden(name) and os.path.islink(os.path.join(folder, name)) for name in folders)
        folders[:] = [name for name in folders if not _hidden(name)]  # os.walk follows no link to a folder
        hidden_files += sum(map(_hidden, files))
        found += [Path(folder, name) for name in files if not _hidden(name)]
    _say_not_scanned(path, hidden_files, hidden_folders, folder_links)
    return sorted(found) or [path]


def _expand_url(url: str) -> list[str]:
    found, hidden_files = expand_url(url, _hidden)
    _say_not_scanned(url, hidden_files)
    return found


def _hidden(name: str) -> bool:
    """Hidden files and folders are not scanned: .git, .DS_Store, macOS's ._ copies, editors' swap files."""
    return name.startswith(".")


def _say_not_scanned(folder: Path | str, hidden_files: int, hidden_folders: int = 0, folder_links: int = 0) -> None:
    """One warning, when a folder's scan left something out."""
    parts = [counted(count, noun, plural) for count, noun, plural in (
        (hidden_files, "hidden file", None), (hidden_folders, "hidden folder", None),
        (folder_links, "link to a folder", "links to a folder")) if count]
    if parts:
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        log.warning("%s: %s not scanned (hidden: a name starting with '.'); give one by name to read it", folder,
                    listed)


@dataclass(frozen=True)
class Frame:
    index: int
    """Position in the video (0 for an image)."""
    timestamp: float | None
    """Seconds from the start of the video; None for an image."""
    image: np.ndarray
    """RGB uint8 [H, W, 3]."""


@dataclass
class Media:
    """The frames kept from one input, with what a reader should know about how they were got. From
    ``open_media`` a video's ``frames`` are decoded as they are iterated, and its ``notes`` are complete once
    they are exhausted; from ``read_media`` they are a list."""

    path: str | None
    kind: str
    """'image' or 'video'."""
    frames: Iterable[Frame]
    total_frames: int = 1
    notes: list[str] = field(default_factory=list)
    sha256: str | None = None
    """The file's, from the bytes decoding read (``hashing``): an image's at once, a video's once its frames are
    exhausted; None for an input held in memory."""


DEFAULT_FRAMES = 32
"""Frames sampled per video when none is asked: the papers' and DeepfakeBench's 32."""


@dataclass(frozen=True)
class Sampler:
    """Which frames of a video to keep.

    ``uniform``: ``count`` frames spaced evenly over the whole video (DeepfakeBench);
    ``stride``: every ``count``-th frame; ``spread``: ``count`` frames in GenD's order (the middle
    frame, then always the frame farthest from those taken); ``all``: every frame.
    """

    kind: str = "uniform"
    count: int = DEFAULT_FRAMES

    KINDS = ("uniform", "stride", "spread", "all")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise OptionError("sampler", f"frame sampler must be one of {self.KINDS}, not {self.kind!r}")
        if self.count < 1:
            raise UsageError(f"the sampler's count must be at least 1, not {self.count}")

    @classmethod
    def of(cls, kind: str, frames: int, stride: int | None = None) -> Sampler:
        """The sampler the options ``sampler``, ``frames`` and ``stride`` ask for (on the command line and of
        the service alike): a stride goes with the stride sampler, and only with it; the others take frames."""
        if kind == "stride" and stride is None:
            raise OptionError("stride", "the stride sampler needs a stride N (keep every N-th frame)")
        if kind != "stride" and stride is not None:
            raise OptionError("stride", f"a stride is for the stride sampler, not {kind!r} (which takes frames)")
        return cls(kind, stride if kind == "stride" else frames)

    def settings(self) -> dict:
        """The sampler as the options that ask for it (``--sampler`` with ``--frames``, or ``--stride``)."""
        return {"sampler": self.kind, "stride" if self.kind == "stride" else "frames": self.count}

    def pick(self, total: int) -> list[int]:
        """Sorted frame indices to keep out of ``total``."""
        if total <= 0:
            return []
        if self.kind == "uniform":
            return sorted(set(np.linspace(0, total - 1, self.count, dtype=int).tolist()))
        if self.kind == "stride":
            return list(range(0, total, self.count))
        if self.kind == "spread":
            return sorted(spread_order(total, self.count))
        return list(range(total))


def spread_order(total: int, count: int | None = None) -> list[int]:
    """GenD's frame order (its first ``count``): start at ``total // 2``, then always the frame
    farthest from the nearest frame taken, ties to the lowest index."""
    positions = np.arange(total)
    order = [total // 2]
    distance = np.abs(positions - order[0])
    for _ in range(min(count or total, total) - 1):
        distance[order[-1]] = -1
        order.append(int(np.argmax(distance)))
        distance = np.where(distance < 0, distance, np.minimum(distance, np.abs(positions - order[-1])))
    return order


def open_video(path: str | Path, sampler: Sampler = Sampler(), max_frames: int = MAX_VIDEO_FRAMES) -> Media:
    """A video whose sampled frames are decoded once, front to back, as they are iterated, by a thread of their
    own a few frames ahead (``DECODED_AHEAD``): memory holds those few, however many are sampled. What cannot be
    opened raises ``MediaError`` here; a stream damaged or cut short part-way keeps what was decoded and says so in
    ``notes`` when exhausted."""
    import av

    path = Path(path)
    try:
        file, hashed = open_hashed(path)
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file", "video") from None
    except OSError as error:
        raise MediaError(f"{path}: unreadable video ({error.strerror})", "video") from None
    try:
        container = av.open(file)
    except av.FFmpegError as error:
        file.close()
        what = "empty file" if path.stat().st_size == 0 else f"unreadable video ({error.strerror})"
        raise MediaError(f"{path}: {what}", "video") from None
    try:
        if not container.streams.video:
            kind = "audio" if container.streams.audio else "video"
            raise MediaError(f"{path}: {'an audio file: ' if kind == 'audio' else ''}no video stream", kind)
        stream = container.streams.video[0]
        total = stream.frames or _count_packets(path)
        if total > max_frames:
            raise MediaError(f"{path}: {total:,} frames exceeds the limit of {max_frames:,}", "video")
    except BaseException:
        container.close()
        file.close()
        raise
    media = Media(str(path), "video", [], total_frames=total)
    media.frames = made_ahead(_sampled_frames(container, stream, sampler.pick(total),
                                              _declared_frames(container, stream), media, file, hashed),
                              DECODED_AHEAD, f"decode {path.name}")
    return media


def _sampled_frames(container, stream, wanted: list[int], declared: int | None, media: Media, file: io.BufferedReader,
                    hashed: HashingFile) -> Iterator[Frame]:
    """The wanted frames as they decode; then the file's digest and the notes on what was not decoded."""
    kept = 0
    with file, container:
        decoding = _decode_wanted(container, stream, set(wanted))
        while True:
            try:
                frame = next(decoding)
            except StopIteration as end:
                decoded, damage = end.value
                break
            kept += 1
            yield frame
        media.sha256 = hashed.sha256()
    if damage:
        media.notes.append(f"damaged stream: decoding stopped after frame {decoded} ({damage})")
    elif declared and media.total_frames < declared - 1:
        media.notes.append(f"the file holds {media.total_frames} of the {declared} frames its header declares "
                           "(cut short?): scored on the frames it holds")
    missing = len(wanted) - kept
    if missing:
        if not damage and decoded < media.total_frames:
            media.notes.append(f"the stream ended after {decoded} of {media.total_frames} frames")
        media.notes.append(f"{missing} of {len(wanted)} sampled frames could not be decoded")
    if not kept:
        raise MediaError(f"{media.path}: no frame could be decoded ({'; '.join(media.notes)})", "video")


def read_frames(path: str | Path, indices: Iterable[int]) -> list[Frame]:
    """The frames at ``indices`` of a video, decoded front to back (pictures of chosen frames, as a case report
    shows); those it cannot decode are left out."""
    import av

    try:
        with av.open(str(path)) as container:
            return list(_decode_wanted(container, container.streams.video[0], set(indices)))
    except (av.FFmpegError, OSError, IndexError):
        return []


def _declared_frames(container, stream) -> int | None:
    """Frames the header promises (its duration times the frame rate), to tell a cut-short file."""
    if stream.frames:
        return stream.frames
    if container.duration and stream.average_rate:
        return round(container.duration / 1_000_000 * float(stream.average_rate))
    return None


def _decode_wanted(container, stream, wanted: set[int]) -> Generator[Frame, None, tuple[int, str | None]]:
    """Decodes packet by packet up to the last wanted frame, yielding the wanted ones; returns the frames
    decoded and the error that stopped it. After an error, the frames the decoder still holds are drained.

    A frame's index comes from its timestamp where the stream has a frame rate, so a frame the
    decoder drops does not shift the indices of those after it; otherwise frames are counted.

    Where a packet's timestamp says its frame is not wanted, the decoder may skip the frame if no other frame
    refers to it (FFmpeg's ``skip_frame`` NONREF): the frames wanted come out the same, with about half the
    frames of a 25 fps H.264 video between them never decoded.
    """
    import av

    last = max(wanted, default=-1)
    rate = float(stream.average_rate) if stream.average_rate else None
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    decoded = 0
    skipping = "DEFAULT"

    def index_at(pts: int | None) -> int | None:
        """The index of the frame shown at ``pts`` (None without a frame rate or a timestamp)."""
        return None if rate is None or pts is None else round((float(pts * stream.time_base) - start) * rate)

    def take(frames) -> Iterator[Frame]:
        nonlocal decoded
        for frame in frames:
            time = float(frame.pts * stream.time_base) if frame.pts is not None else None
            index = index_at(frame.pts)
            index = decoded if index is None else index
            if index in wanted:
                yield Frame(index, time, _displayed(frame))
            decoded = max(decoded, index) + 1
            if decoded > last:
                return

    try:
        for packet in container.demux(stream):
            index = index_at(packet.pts)
            skip = "NONREF" if index is not None and index not in wanted else "DEFAULT"
            if skip != skipping:
                skipping = stream.codec_context.skip_frame = skip
            yield from take(packet.decode())
            if decoded > last:
                return decoded, None
    except av.FFmpegError as error:
        try:
            yield from take(stream.codec_context.decode(None))
        except av.FFmpegError:
            pass
        return decoded, str(error)
    return decoded, None


def _displayed(frame) -> np.ndarray:
    """A decoded frame as RGB the way players show it: turned and mirrored as its display matrix says, as
    FFmpeg's autorotate does (a phone stores a portrait video as landscape frames with a matrix that turns
    them upright). A matrix that tilts the frame by other than quarter turns is left alone."""
    from av.sidedata.sidedata import Type

    image = frame.to_ndarray(format="rgb24")
    matrix = frame.side_data.get(Type.DISPLAYMATRIX)
    if matrix is None:
        return image
    # FFmpeg's matrix puts the stored pixel (x, y) at (a * x + c * y, b * x + d * y) on screen
    a, b, _, c, d = np.frombuffer(bytes(matrix), dtype=np.int32)[:5].tolist()
    if a == d == 0 and b and c:  # a quarter turn: the screen's columns are the stored rows
        image, a, d = image.transpose(1, 0, 2), c, b
    elif b or c or not (a and d):
        return image
    return np.ascontiguousarray(image[:: -1 if d < 0 else 1, :: -1 if a < 0 else 1])


def _count_packets(path: Path) -> int:
    """Frames by demuxing (no decoding), for containers that do not store a count."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except av.FFmpegError:
            return 0


def open_media(path: str | Path, sampler: Sampler = Sampler(), max_pixels: int | None = None) -> Media:
    """An image (one frame) or a video (its sampled frames, decoded as they are iterated), as ``kind_of`` finds
    the file; anything else is a ``MediaError`` of its kind (an audio file has no video stream; other files are
    not an image or a video)."""
    path = Path(path)
    kind = kind_of(path)
    problem = _unreachable(path)
    if problem:
        raise MediaError(f"{path}: {problem}", kind)
    if kind == "image":
        image, sha256 = read_image(path, max_pixels or MAX_IMAGE_PIXELS)
        return Media(str(path), "image", [Frame(0, None, np.asarray(image))], sha256=sha256)
    if kind == "other":
        raise MediaError(f"{path}: not an image or a video", kind)
    return open_video(path, sampler)  # an audio file fails there, saying so


def _unreachable(path: Path) -> str | None:
    """Why ``path`` leads to no file to decode (a link loop, a broken link, a folder, nothing), or None."""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a link loop so
        return "a symbolic link loop: it cannot be resolved"
    except FileNotFoundError:
        return f"a broken link to {os.readlink(path)}" if path.is_symlink() else "no such file"
    except OSError as error:
        return "a symbolic link loop: it cannot be resolved" if error.errno == errno.ELOOP else error.strerror
    if path.is_dir():
        try:
            os.scandir(path).close()
        except OSError as error:
            return f"a folder that cannot be read ({error.strerror})"
        return "a folder with no files in it (searched recursively; hidden files are not scanned)"
    if not path.is_file():
        return "not a regular file (a pipe, socket or device): give a file"
    return None


def read_video(path: str | Path, sampler: Sampler = Sampler(), max_frames: int = MAX_VIDEO_FRAMES) -> Media:
    """``open_video`` with every sampled frame decoded into a list."""
    media = open_video(path, sampler, max_frames)
    media.frames = list(media.frames)
    return media


def read_media(path: str | Path, sampler: Sampler = Sampler(), max_pixels: int | None = None) -> Media:
    """``open_media`` with every sampled frame decoded into a list."""
    media = open_media(path, sampler, max_pixels)
    media.frames = list(media.frames)
    return media


class VideoWriter:
    """RGB frames to an H.264 MP4 as they come (sides cropped to even sizes, as yuv420p needs)."""

    def __init__(self, path: Path, fps: int):
        self.path, self.fps = path, fps
        self._container = self._stream = None

    def write(self, frame: np.ndarray) -> None:
        import av

        if self._container is None:
            self._container = av.open(str(self.path), "w", format="mp4")
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            height, width = (side - side % 2 for side in frame.shape[:2])
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        picture = np.ascontiguousarray(frame[: self._stream.height, : self._stream.width])
        self._container.mux(self._stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))

    def close(self) -> None:
        if self._container is not None:
            self._container.mux(self._stream.encode())
            self._container.close()


def write_video(frames: Iterable[np.ndarray], path: Path, fps: int) -> None:
    """RGB frames to an H.264 MP4 (sides cropped to even sizes, as yuv420p needs)."""
    writer = VideoWriter(path, fps)
    for frame in frames:
        writer.write(frame)
    writer.close()
