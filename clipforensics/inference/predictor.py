"""The public Python API: ``load(name_or_path)`` and the ``Predictor`` it returns, for any model.

A predictor asks its model what it can do: p_fake comes from the head when there is one, else from the
map (its mean, as DeCLIP scores images); maps come whenever the model has a decoder.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..faces.options import FaceOptions
from ..hub import zoo
from ..hub.checkpoints import load_model, save_model
from ..media import MEDIA_SUFFIXES, Sampler, expand_sources
from ..metrics import aggregate
from ..models.model import ForensicsModel, ModelConfig
from ..progress import progress_bar
from ..transforms import Preprocessing, normalize
from .maps import frame_maps
from .prepare import Prepared, prepare
from .results import FaceResult, FrameResult, Result
from .runtime import autocast, resolve_device, resolve_precision
from .writers import annotate as draw
from .writers import save_crops as write_crops
from .writers import write_map_files

Source = str | Path | Image.Image | np.ndarray


def load(
    name_or_path: str | Path,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    threshold: float = 0.5,
) -> Predictor:
    """A model from a zoo name (``clipforensics zoo``) or any checkpoint path the tool can read: a
    detector, a DeCLIP-style localizer or a joint model, behind one ``Predictor``."""
    path = zoo.resolve(str(name_or_path)) if str(name_or_path) in zoo.ZOO else Path(name_or_path)
    model, provenance = load_model(path)
    return Predictor(model, device, precision, batch_size, threshold, provenance)


class Predictor:
    """Scores images and videos: ``predict(sources)`` gives one ``Result`` per input, in order, with
    p_fake, per-frame and per-face detail and, from a model with a decoder, manipulation maps."""

    def __init__(
        self,
        model: ForensicsModel,
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
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def preprocessing(self) -> Preprocessing:
        return self.model.config.preprocessing

    @property
    def has_head(self) -> bool:
        return self.model.has_head

    @property
    def has_decoder(self) -> bool:
        """Whether ``predict`` can give maps (a localizer, or a detector trained with a decoder)."""
        return self.model.has_decoder

    def save(self, folder: str | Path) -> Path:
        return save_model(self.model, folder, provenance=self.provenance)

    @torch.inference_mode()
    def predict_tensor(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits (float32, on CPU) for a preprocessed batch [B, 3, H, W]: the head's [B, classes], or
        the map's [B, 1, h, w] for a model without a head."""
        with autocast(self.device, self.precision):
            output = self.model(pixels.to(self.device))
        return (output.logits if output.logits is not None else output.maps).float().cpu()

    @torch.inference_mode()
    def forward_batch(self, pixels: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """p_fake [B] and, with ``maps``, probability maps [B, h, w] (CPU, float32) from one forward."""
        with autocast(self.device, self.precision):
            output = self.model(pixels.to(self.device), maps=maps)
        p_fake = self.model.p_fake(output).float().cpu()
        return p_fake, torch.sigmoid(output.maps.float())[:, 0].cpu() if maps else None

    def predict(self, sources: Source | Iterable[Source], **options) -> list[Result]:
        """See ``iter_predict`` for the options."""
        return list(self.iter_predict(sources, **options))

    def iter_predict(
        self,
        sources: Source | Iterable[Source],
        faces: str | FaceOptions | None = None,
        frames: int | Sampler = 32,
        aggregate_by: str = "mean",
        save_crops: str | Path | None = None,
        annotate: str | Path | None = None,
        workers: int | None = None,
        progress: bool | None = None,
        shard: tuple[int, int] | None = None,
        maps: bool | None = None,
        save_maps: str | Path | None = None,
    ) -> Iterator[Result]:
        """Yields one result per input, in input order, as soon as its crops are scored.

        ``faces``: ``"auto"`` finds and aligns faces (or a ``FaceOptions``), ``"none"`` takes each
        image or frame as an aligned face crop (default: auto for a model with a head, none for a
        localizer, which reads whole images as DeCLIP does). ``frames``: how many frames of a video,
        spread uniformly, or a ``Sampler``. ``aggregate_by``: a video's p_fake from its frames' (mean,
        median, max). ``save_crops`` / ``annotate``: folders for the aligned crops and for the inputs
        drawn with boxes and scores. Inputs that fail get a row with ``error``. ``shard``: (rank, ranks)
        of a sharded run, which takes every ranks-th input from the rank-th (output paths are those of
        the whole run). ``maps``: results carry manipulation maps (default: whenever the model has a
        decoder); ``save_maps``: a folder for each input's ``.mask.png`` and ``.overlay.png``
        (``.mask/`` and ``.overlay.mp4`` for a video).
        """
        maps = self.has_decoder if maps is None else maps or save_maps is not None
        if maps and not self.has_decoder:
            raise ValueError("this model has no decoder: it gives p_fake but no maps (load a localizer or a "
                             "detector trained with a decoder)")
        faces = ("auto" if self.has_head else "none") if faces is None else faces
        options = faces if isinstance(faces, FaceOptions) else FaceOptions(mode=faces)
        sampler = frames if isinstance(frames, Sampler) else Sampler("uniform", frames)
        inputs = _expand(sources)
        stems = _output_stems(inputs)
        if shard is not None:
            rank, ranks = shard
            inputs, stems = inputs[rank::ranks], stems[rank::ranks]
        detectors = threading.local()

        def work(number: int) -> Prepared:
            if not hasattr(detectors, "face"):
                detectors.face = options.create_detector()
            source = inputs[number]
            keep = annotate is not None or maps or not isinstance(source, (str, Path))
            prepared = prepare(source, self.preprocessing, options, detectors.face, sampler, keep_frames=keep)
            if save_crops is not None and prepared.error is None:
                write_crops(prepared, Path(save_crops), stems[number])
            return prepared

        with progress_bar(len(inputs), progress, "detect") as bar:
            number = 0
            for group in _prepared_groups(len(inputs), work, self.batch_size, workers or min(4, os.cpu_count() or 1)):
                for result in self._score(group, aggregate_by, maps):
                    if annotate is not None and result.ok:
                        draw(result, Path(annotate), stems[number], self.threshold)
                    if save_maps is not None and result.ok:
                        result.files["mask"], result.files["overlay"] = write_map_files(
                            result, Path(save_maps), stems[number])
                    number += 1
                    bar.update(1)
                    yield result

    def _score(self, group: list[Prepared], aggregate_by: str, maps: bool) -> list[Result]:
        faces = [face for prepared in group if prepared.error is None for frame in prepared.frames
                 for face in frame.faces]
        scores, face_maps = self._infer(np.stack([face.pixels for face in faces]), maps) if faces else ([], [])
        remaining_scores = iter(scores)
        results = [self._result(prepared, remaining_scores, aggregate_by) for prepared in group]
        if maps:
            remaining = iter(face_maps)
            for prepared, result in zip(group, results):
                if prepared.error is None:
                    result.maps = frame_maps(prepared, remaining, self.preprocessing)
        return results

    def _infer(self, pixels: np.ndarray, maps: bool) -> tuple[list[float], list[np.ndarray]]:
        scores: list[float] = []
        face_maps: list[np.ndarray] = []
        for start in range(0, len(pixels), self.batch_size):
            p_fake, probabilities = self.forward_batch(normalize(pixels[start : start + self.batch_size],
                                                                 self.preprocessing), maps)
            scores += p_fake.tolist()
            face_maps += list(probabilities.numpy()) if probabilities is not None else []
        return scores, face_maps

    def _result(self, prepared: Prepared, scores: Iterator[float], aggregate_by: str) -> Result:
        result = Result(prepared.path, kind=prepared.kind, notes=prepared.notes, error=prepared.error)
        for frame in prepared.frames:
            result.frames.append(FrameResult(frame.index, frame.timestamp, [
                FaceResult(
                    None if face.face is None else [round(float(v), 1) for v in face.face.box],
                    None if face.face is None else round(face.face.score, 4),
                    None if prepared.error else next(scores),
                )
                for face in frame.faces
            ]))
        result.images = [frame.image for frame in prepared.frames if frame.image is not None]
        frame_scores = [frame.p_fake for frame in result.frames if frame.p_fake is not None]
        if result.ok and frame_scores:
            result.p_fake = aggregate(frame_scores, aggregate_by)
            result.label = "fake" if result.p_fake >= self.threshold else "real"
        return result


def _expand(sources: Source | Iterable[Source]) -> list[Source]:
    if isinstance(sources, (str, Path, Image.Image, np.ndarray)):
        sources = [sources]
    inputs: list[Source] = []
    for source in sources:
        if isinstance(source, (str, Path)):
            inputs += expand_sources([source], MEDIA_SUFFIXES)
        elif isinstance(source, (Image.Image, np.ndarray)):
            inputs.append(source)
        else:
            raise TypeError(f"cannot read a {type(source).__name__}: pass paths, PIL images or uint8 arrays")
    return inputs


def _output_stems(inputs: list[Source]) -> list[Path]:
    """Where each input's files go in an output folder: its path relative to the inputs' common
    folder, suffix dropped (inputs repeat file names across folders); ``input-N`` for in-memory ones."""
    paths = [Path(source).resolve() for source in inputs if isinstance(source, (str, Path))]
    root = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else Path.cwd()
    return [
        Path(source).resolve().relative_to(root).with_suffix("") if isinstance(source, (str, Path))
        else Path(f"input-{number:05d}")
        for number, source in enumerate(inputs)
    ]


def _prepared_groups(
    count: int, work: Callable[[int], Prepared], batch_size: int, workers: int
) -> Iterator[list[Prepared]]:
    """Prepared inputs, in order, grouped until a group holds a batch of crops."""
    group: list[Prepared] = []
    crops = 0
    for prepared in _prepared_in_order(count, work, workers):
        group.append(prepared)
        crops += prepared.crops
        if crops >= batch_size:
            yield group
            group, crops = [], 0
    if group:
        yield group


def _prepared_in_order(count: int, work: Callable[[int], Prepared], workers: int) -> Iterator[Prepared]:
    """A thread pool works a window of inputs ahead while the caller scores what came before."""
    window = max(2 * workers, 8)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        for number in range(count):
            pending.append(pool.submit(work, number))
            if len(pending) > window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
