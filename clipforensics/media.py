"""Decoding inputs: images to RGB, folders to sorted file lists, with limits and clear errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
MAX_IMAGE_PIXELS = 100_000_000


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


def expand_sources(sources: Iterable[str | Path], suffixes: frozenset[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Files stay as given; a folder becomes its files with a known suffix, recursive and sorted."""
    paths: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            paths.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes))
        else:
            paths.append(path)
    return paths
