"""The public Python API: ``load(name_or_path)`` and the ``Detector`` it returns."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import zoo
from .checkpoints import load_detector, save_detector
from .errors import MediaError
from .media import expand_sources, load_image, to_rgb
from .models.detector import ClipDetector, DetectorConfig
from .results import Result
from .runtime import autocast, resolve_device, resolve_precision
from .transforms import Preprocessing, normalize, resize_and_crop

Source = str | Path | Image.Image | np.ndarray


def load(
    name_or_path: str | Path,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    threshold: float = 0.5,
) -> Detector:
    """A detector from a zoo name (``clipforensics zoo``) or any checkpoint path the tool can read."""
    path = zoo.resolve(str(name_or_path)) if str(name_or_path) in zoo.ZOO else Path(name_or_path)
    model, provenance = load_detector(path)
    return Detector(model, device, precision, batch_size, threshold, provenance)


@dataclass
class _Item:
    """One input on its way to the model: a name for the row and how to get its pixels."""

    path: str | None
    read: Callable[[], Image.Image]


class Detector:
    """Scores aligned face crops: ``predict(sources)`` gives one ``Result`` per input, in order."""

    def __init__(
        self,
        model: ClipDetector,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        threshold: float = 0.5,
        provenance: dict | None = None,
    ):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.eval().to(self.device)
        self.batch_size = batch_size
        self.threshold = threshold
        self.provenance = provenance or {}

    @property
    def config(self) -> DetectorConfig:
        return self.model.config

    def save(self, folder: str | Path) -> Path:
        return save_detector(self.model, folder, provenance=self.provenance)

    @torch.inference_mode()
    def predict_tensor(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] (float32, on CPU) for a preprocessed batch [B, 3, H, W]."""
        with autocast(self.device, self.precision):
            logits = self.model(pixels.to(self.device)).logits
        return logits.float().cpu()

    def predict(self, sources: Source | Iterable[Source], progress: bool | None = None) -> list[Result]:
        return list(self.iter_predict(sources, progress=progress))

    def iter_predict(self, sources: Source | Iterable[Source], progress: bool | None = None) -> Iterator[Result]:
        """Yields results in input order as batches finish; inputs that fail get a row with ``error``."""
        items = _items(sources)
        with _progress_bar(len(items), progress) as bar:
            for batch in _decoded_batches(items, self.batch_size, self.config.preprocessing):
                yield from self._score(batch)
                bar.update(len(batch))

    def _score(self, batch: list[tuple[_Item, np.ndarray | str]]) -> list[Result]:
        decoded = [pixels for _, pixels in batch if not isinstance(pixels, str)]
        probabilities = iter(())
        if decoded:
            logits = self.predict_tensor(normalize(np.stack(decoded), self.config.preprocessing))
            probabilities = iter(logits.softmax(dim=1)[:, self.config.fake_index].tolist())
        return [
            Result(item.path, error=pixels) if isinstance(pixels, str) else self._verdict(item, next(probabilities))
            for item, pixels in batch
        ]

    def _verdict(self, item: _Item, p_fake: float) -> Result:
        return Result(item.path, p_fake=p_fake, label="fake" if p_fake >= self.threshold else "real")


def _items(sources: Source | Iterable[Source]) -> list[_Item]:
    if isinstance(sources, (str, Path, Image.Image, np.ndarray)):
        sources = [sources]
    items: list[_Item] = []
    for source in sources:
        if isinstance(source, (str, Path)):
            items += [_Item(str(path), lambda path=path: load_image(path)) for path in expand_sources([source])]
        elif isinstance(source, Image.Image):
            items.append(_Item(None, lambda image=source: image))
        elif isinstance(source, np.ndarray):
            items.append(_Item(None, lambda array=source: _array_image(array)))
        else:
            raise TypeError(f"cannot read a {type(source).__name__}: pass paths, PIL images or uint8 arrays")
    return items


def _array_image(array: np.ndarray) -> Image.Image:
    channels = 1 if array.ndim == 2 else array.shape[-1]
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or channels not in (1, 3, 4):
        raise MediaError(f"arrays must be uint8 [H, W], [H, W, 3] (RGB) or [H, W, 4], got {array.dtype} {list(array.shape)}")
    return to_rgb(Image.fromarray(array.squeeze(-1) if channels == 1 and array.ndim == 3 else array))


def _decode(item: _Item, preprocessing: Preprocessing) -> np.ndarray | str:
    """The crop the model sees, or the error message that goes in the row."""
    try:
        return resize_and_crop(item.read(), preprocessing)
    except MediaError as error:
        return str(error)


def _decoded_batches(
    items: list[_Item], batch_size: int, preprocessing: Preprocessing
) -> Iterator[list[tuple[_Item, np.ndarray | str]]]:
    """Batches of (item, crop or error), decoded by a thread pool one batch ahead of the model."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending: deque[list[tuple[_Item, Future]]] = deque()
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            pending.append([(item, pool.submit(_decode, item, preprocessing)) for item in chunk])
            if len(pending) > 1:
                yield [(item, future.result()) for item, future in pending.popleft()]
        while pending:
            yield [(item, future.result()) for item, future in pending.popleft()]


def _progress_bar(total: int, enabled: bool | None):
    from tqdm import tqdm

    show = total > 8 if enabled is None else enabled
    return tqdm(total=total, disable=not show, unit="img", desc="detect", leave=False)
