"""Decoding inputs: images to RGB, videos to sampled frames, folders to sorted file lists; limits and clear errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError, UsageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
MAX_IMAGE_PIXELS = 100_000_000
MAX_VIDEO_FRAMES = 100_000


def load_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An image file as 8-bit RGB, EXIF orientation applied; ``MediaError`` says why it cannot be."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(path) as image:
                _check_size(image, max_pixels)
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except MediaError:
        raise
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MediaError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        size = path.stat().st_size
        what = "empty file" if size == 0 else "not an image PIL can decode"
        raise MediaError(f"{path}: {what}") from None
    except Image.DecompressionBombError as error:
        raise MediaError(f"{path}: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise MediaError(f"{path}: damaged image ({error})") from None


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise MediaError(
            f"{image.filename}: {width}x{height} pixels exceeds the limit of {max_pixels:,} "
            "(raise it with max_pixels if the file is trusted)"
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


def expand_sources(sources: Iterable[str | Path], suffixes: frozenset[str]) -> list[Path]:
    """Files stay as given; a folder becomes its files with a known suffix, recursive and sorted."""
    paths: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            paths.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes))
        else:
            paths.append(path)
    return paths


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
    """The frames kept from one input, with what a reader should know about how they were got."""

    path: str
    kind: str
    """'image' or 'video'."""
    frames: list[Frame]
    total_frames: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sampler:
    """Which frames of a video to keep.

    ``uniform``: ``count`` frames spaced evenly over the whole video (DeepfakeBench, 32);
    ``stride``: every ``count``-th frame; ``spread``: ``count`` frames in GenD's order (the middle
    frame, then always the frame farthest from those taken); ``all``: every frame.
    """

    kind: str = "uniform"
    count: int = 32

    KINDS = ("uniform", "stride", "spread", "all")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise UsageError(f"frame sampler must be one of {self.KINDS}, not {self.kind!r}")
        if self.count < 1:
            raise UsageError(f"the sampler's count must be at least 1, not {self.count}")

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


def read_video(path: str | Path, sampler: Sampler = Sampler(), max_frames: int = MAX_VIDEO_FRAMES) -> Media:
    """Decodes a video once, front to back, keeping only the sampled frames.

    A stream damaged part-way keeps what was decoded before the damage, and says so in ``notes``.
    """
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except av.FFmpegError as error:
        what = "empty file" if path.stat().st_size == 0 else f"unreadable video ({error})"
        raise MediaError(f"{path}: {what}") from None
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        total = stream.frames or _count_packets(path)
        if total > max_frames:
            raise MediaError(f"{path}: {total:,} frames exceeds the limit of {max_frames:,}")
        wanted = sampler.pick(total)
        media = Media(str(path), "video", [], total_frames=total)
        decoded, damage = _decode_wanted(container, stream, set(wanted), media.frames)
    if damage:
        media.notes.append(f"damaged stream: decoding stopped after frame {decoded} ({damage})")
    missing = len(wanted) - len(media.frames)
    if missing:
        if not damage:
            media.notes.append(f"the stream ended after {decoded} of {total} frames")
        media.notes.append(f"{missing} of {len(wanted)} sampled frames could not be decoded")
    if not media.frames:
        raise MediaError(f"{path}: no frame could be decoded ({'; '.join(media.notes)})")
    return media


def _decode_wanted(container, stream, wanted: set[int], kept: list[Frame]) -> tuple[int, str | None]:
    """Decodes packet by packet up to the last wanted frame; returns frames decoded and the error
    that stopped it. After an error, the frames the decoder still holds are drained and kept.

    A frame's index comes from its timestamp where the stream has a frame rate, so a frame the
    decoder drops does not shift the indices of those after it; otherwise frames are counted.
    """
    import av

    last = max(wanted, default=-1)
    rate = float(stream.average_rate) if stream.average_rate else None
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    decoded = 0

    def take(frames) -> bool:
        nonlocal decoded
        for frame in frames:
            time = float(frame.pts * stream.time_base) if frame.pts is not None else None
            index = round((time - start) * rate) if rate and time is not None else decoded
            if index in wanted:
                kept.append(Frame(index, time, frame.to_ndarray(format="rgb24")))
            decoded = max(decoded, index) + 1
            if decoded > last:
                return False
        return True

    try:
        for packet in container.demux(stream):
            if not take(packet.decode()):
                return decoded, None
    except av.FFmpegError as error:
        try:
            take(stream.codec_context.decode(None))
        except av.FFmpegError:
            pass
        return decoded, str(error)
    return decoded, None


def _count_packets(path: Path) -> int:
    """Frames by demuxing (no decoding), for containers that do not store a count."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except av.FFmpegError:
            return 0


def read_media(path: str | Path, sampler: Sampler = Sampler(), max_pixels: int = MAX_IMAGE_PIXELS) -> Media:
    """An image (one frame) or a video (its sampled frames), chosen by the file's suffix."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return read_video(path, sampler)
    image = np.asarray(load_image(path, max_pixels))
    return Media(str(path), "image", [Frame(0, None, image)])


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """RGB frames to an H.264 MP4 (sides cropped to even sizes, as yuv420p needs)."""
    import av

    height, width = (side - side % 2 for side in frames[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
