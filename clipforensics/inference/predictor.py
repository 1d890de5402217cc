"""The public Python API: ``load(name_or_path)`` and the ``Predictor`` it returns, for any model.

A predictor asks its model what it can do: p_fake comes from the head when there is one, else from the
map (its mean, as DeCLIP scores images); maps come whenever the model has a decoder.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..channels import offer
from ..faces.options import FaceOptions
from ..hub import zoo
from ..hub.checkpoints import load_model, save_model
from ..media import DEFAULT_FRAMES, Sampler, expand_sources, kind_of
from ..models.explanation import METHODS, explain
from ..models.model import ForensicsModel, ModelConfig
from ..models.precision import in_bf16, pack_linears
from ..models.towers.bf16_kernels import attention_kernel
from ..progress import progress_bar
from ..transforms import Preprocessing, normalize
from .assembly import Outputs, ResultBuilder, Scored
from .calibration import Band, Calibration, Decision, decision, operating_point_of, read_calibration
from .outputs import OutputNames, output_folder
from .prepare import Prepared, prepare
from .provenance import checkpoint_identity, run_header, scoring_options
from .results import Result
from .runtime import activations_on_the_heap, autocast, release_freed_memory, resolve_device, resolve_precision
from .settings import ScoreSettings
from .writers import save_crops as write_crops

Source = str | Path | Image.Image | np.ndarray
KEPT_FRAMES = 8
"""Frames whose whole images are kept (to draw on, or to place maps on) go to the model this many at a
time at most: a 1080p frame is 6 MB, and these are what a long video holds in flight."""


def load(
    name_or_path: str | Path,
    device: str | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    threshold: float | None = None,
    operating_point: str | None = None,
    uncertain: Band | tuple[float, float] | None = None,
    calibrated: bool = True,
) -> Predictor:
    """A model from a zoo name (``clipforensics zoo``) or any checkpoint path the tool can read: a
    detector, a DeCLIP-style localizer or a joint model, behind one ``Predictor``. A model calibrated by
    ``clipforensics calibrate`` gives calibrated p_fake (``calibrated=False``: its raw scores) and decides
    labels at its operating point, unless ``operating_point`` (a threshold's name or a number) or
    ``threshold`` says otherwise; ``uncertain``, a ``Band`` or its (low, high), labels scores in that band
    uncertain."""
    path = zoo.resolve(str(name_or_path)) if str(name_or_path) in zoo.ZOO else Path(name_or_path)
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    model, provenance = load_model(path, bf16=precision == "bf16")
    calibration = read_calibration(path) if calibrated else None
    return Predictor(model, device, precision, batch_size, threshold, provenance, calibration, operating_point,
                     uncertain, checkpoint_identity(str(name_or_path), path))


class Predictor:
    """Scores images and videos: ``predict(sources)`` gives one ``Result`` per input, in order, with
    p_fake, per-frame and per-face detail and, from a model with a decoder, manipulation maps."""

    def __init__(
        self,
        model: ForensicsModel,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        threshold: float | None = None,
        provenance: dict | None = None,
        calibration: Calibration | None = None,
        operating_point: str | None = None,
        uncertain: Band | tuple[float, float] | None = None,
        checkpoint: dict | None = None,
    ):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = (in_bf16(model) if self.precision == "bf16" else model).eval().to(self.device)
        if self.precision == "bf16":
            pack_linears(self.model)
        self.batch_size = batch_size
        self.provenance = provenance or {}
        self.calibration = calibration
        self.decision = decision(calibration, operating_point_of(threshold, operating_point), uncertain)
        self.checkpoint = checkpoint or checkpoint_identity(None, None)  # load's: the weights' name and sha256

    @property
    def task(self) -> str:
        """detect for a model with a head, else localize: what its face mode defaults to (``ScoreSettings``)."""
        return "detect" if self.has_head else "localize"

    @property
    def identity(self) -> dict:
        """The model as a run header records it: its checkpoint's name, path and weights' sha256, its calibration,
        and its family and size, as the model says."""
        backbone = self.config.backbone
        return {**self.checkpoint, "calibration": self.calibration.to_dict() if self.calibration else None,
                "kind": self.config.kind, "family": backbone.family, "backbone": backbone.name,
                "parameters": sum(parameter.numel() for parameter in self.model.parameters())}

    def run_header(self, decision: Decision | None = None, **options: Any) -> dict:
        """The header of the run ``iter_predict(sources, **options)`` makes (``provenance.run_header``): the model,
        device, precision and every option that changes a score; labels decided as ``decision`` says (default:
        as this predictor decides them)."""
        settings = ScoreSettings.among(self.task, options)
        return run_header(self.identity, str(self.device), self.precision,
                          scoring_options(settings, (decision or self.decision).settings()), attention=self.attention)

    @property
    def attention(self) -> str:
        """Which attention kernel this predictor's passes take (``bf16_kernels.attention_kernel``)."""
        backbone = self.config.backbone
        return attention_kernel(self.device, self.precision, backbone.width // backbone.heads)

    @property
    def threshold(self) -> float:
        """The p_fake from which a label is fake (the operating point's)."""
        return self.decision.threshold

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
        """The model as this predictor holds it (in bf16, its linears' weights in bf16)."""
        return save_model(self.model, folder, provenance=self.provenance)

    @contextlib.contextmanager
    def _model_pass(self) -> Iterator[None]:
        """How every pass of the model runs: its activations on the heap, under the precision's autocast."""
        with activations_on_the_heap(self.device), autocast(self.device, self.precision):
            yield

    @torch.inference_mode()
    def predict_tensor(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits (float32, on CPU) for a preprocessed batch [B, 3, H, W]: the head's [B, classes], or
        the map's [B, 1, h, w] for a model without a head."""
        with self._model_pass():
            output = self.model(pixels.to(self.device))
        return (output.logits if output.logits is not None else output.maps).float().cpu()

    @torch.inference_mode()
    def forward_batch(self, pixels: torch.Tensor, maps: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """p_fake [B] and, with ``maps``, probability maps [B, h, w] (CPU, float32) from one forward."""
        with self._model_pass():
            output = self.model(pixels.to(self.device), maps=maps)
        p_fake = self.model.p_fake(output).float().cpu()
        return p_fake, torch.sigmoid(output.maps.float())[:, 0].cpu() if maps else None

    def explain_batch(self, pixels: torch.Tensor,
                      method: str = "rollout") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """p_fake [B] (as ``forward_batch`` gives it), each crop's explanation [B, grid, grid] (CPU, float32) and
        whether it explains the score for fake (True) or for real [B], from one forward and one backward pass
        (``models.explanation``)."""
        with self._model_pass():
            explained = explain(self.model, pixels.to(self.device), method)
        p_fake = explained.logits.float().softmax(dim=1)[:, self.config.fake_index].cpu()
        return p_fake, explained.maps.cpu(), explained.toward_fake.cpu()

    def predict(self, sources: Source | Iterable[Source], **options) -> list[Result]:
        """See ``iter_predict`` for the options."""
        return list(self.iter_predict(sources, **options))

    def iter_predict(
        self,
        sources: Inputs | Source | Iterable[Source],
        faces: str | FaceOptions | None = None,
        frames: int | Sampler = DEFAULT_FRAMES,
        aggregate_by: str = "mean",
        video_score: str = "people",
        min_person_frames: int | None = None,
        min_face_frames: int = 4,
        save_crops: str | Path | None = None,
        annotate: str | Path | None = None,
        workers: int | None = None,
        progress: bool | None = None,
        progress_label: str = "predict",
        only: Iterable[int] | None = None,
        maps: bool | None = None,
        save_maps: str | Path | None = None,
        max_pixels: int | None = None,
        explain: bool | str = False,
        save_explanations: str | Path | None = None,
    ) -> Iterator[Result]:
        """Yields one result per input, in input order, as soon as its crops are scored.

        ``faces``: ``"auto"`` finds and aligns faces (or a ``FaceOptions``), ``"none"`` takes each
        image or frame as an aligned face crop (default: auto for a model with a head, none for a
        localizer, which reads whole images as DeCLIP does). ``frames``: how many frames of a video,
        spread uniformly, or a ``Sampler``. ``aggregate_by``: a person's p_fake from their faces' (mean, median,
        max). ``video_score``: ``people``, a video's p_fake is the highest of its people's among those seen in
        ``min_person_frames`` sampled frames (None: 4, or 25 % of the frames with a face where fewer), every face of
        its frames scored; ``largest``, the ``aggregate_by`` of its frames' (a frame's: its largest face's, or the
        highest of its faces' when all are scored). A video with a face in fewer than ``min_face_frames`` sampled
        frames is labelled ``insufficient`` (see ``inference.verdicts``). ``save_crops`` / ``annotate``: folders
        for the aligned crops and for the inputs drawn with boxes and scores (a video's people each in a colour).
        Inputs that fail get a row with ``error``. ``progress``: a bar on standard error (None: for more than a
        few inputs, or one video, counting its frames), labelled ``progress_label``.
        ``only``: the numbers of the inputs to score, in that order (a share of a larger run, given ``Inputs``:
        output paths are those of the whole run). ``maps``: results carry manipulation maps (default: whenever the
        model has a decoder); ``save_maps``: a folder for each input's ``.mask.png`` and ``.overlay.png``
        (``.mask/`` and ``.overlay.mp4`` for a video). ``max_pixels``: the largest image accepted
        (default 100 million pixels). ``explain``: each face gets ``explanation``, where the model looked for its
        score (``True``: gradient-weighted attention rollout; or a method's name, ``rollout`` or ``gradcam``), drawn
        under the boxes by ``annotate`` and ``Result.plot(explain=True)``; ``save_explanations``: a folder for each
        face's explanation file (``<name>.explain/<frame>_<face>.png``, implies ``explain``).

        A video is decoded, searched and scored a piece at a time and its files are written as the
        pieces come, so memory does not grow with its length; its result keeps per-frame maps only when
        they are not written to files.
        """
        maps = (self.has_decoder if maps is None else maps) or save_maps is not None
        if maps:
            self.config.require_decoder("maps")
        settings = ScoreSettings.of(self.task, faces, frames, aggregate_by, video_score, min_person_frames,
                                    min_face_frames)
        options, sampler, rule = settings.faces, settings.sampler, settings.rule
        crops_folder = output_folder(save_crops, "--save-crops")
        method = explanation_method(explain or save_explanations is not None)
        if method is not None:
            self.config.require_head("explanations")
        outputs = Outputs(output_folder(annotate, "--annotate"), output_folder(save_maps, "--localize"),
                          self.decision, aggregate_by, maps, self.calibration, rule, method,
                          output_folder(save_explanations, "--explain"))
        inputs = Inputs.of(sources)
        names = inputs.names
        numbers = list(range(len(inputs.items))) if only is None else list(only)
        detectors = threading.local()

        def pieces(number: int) -> Iterator[Prepared]:
            if not hasattr(detectors, "face"):
                detectors.face = options.create_detector()
            source = inputs.items[number]
            keep = outputs.draws or maps or method is not None or not isinstance(source, (str, Path))
            piece_frames = min(KEPT_FRAMES, self.batch_size) if keep else self.batch_size
            for piece in prepare(source, self.preprocessing, options, detectors.face, sampler, keep, number,
                                 piece_frames, max_pixels, rule.face_policy(options.policy)):
                if crops_folder is not None and piece.error is None:
                    write_crops(piece, crops_folder, names)
                yield piece

        by_frames = len(numbers) == 1 and isinstance(inputs.items[numbers[0]], (str, Path)) \
            and kind_of(inputs.items[numbers[0]]) == "video"
        workers = workers or min(4, os.cpu_count() or 1)
        building: dict[int, ResultBuilder] = {}
        with progress_bar(None if by_frames else len(numbers), progress, progress_label,
                          "frame" if by_frames else "input") as bar:
            for group in _batches(_pieces_in_order(numbers, pieces, workers), self.batch_size):
                release_freed_memory()  # the frames of the groups before
                for piece, scored in zip(group, self._score(group, maps, method)):
                    if by_frames and bar.total is None and piece.sampled is not None:
                        bar.total = piece.sampled
                        bar.refresh()
                    builder = building.setdefault(piece.number, ResultBuilder(piece, names, outputs,
                                                                              self.preprocessing))
                    builder.add(piece, scored)
                    bar.update(len(piece.frames) if by_frames else piece.last)
                    if piece.last:
                        yield building.pop(piece.number).finish(piece)

    def _score(self, group: list[Prepared], maps: bool, method: str | None) -> list[Scored]:
        """Per piece, its faces' p_fake, (with ``maps``) maps and (with a ``method``) explanations, from one pass
        over the whole group."""
        faces = [face for piece in group if piece.error is None for frame in piece.frames for face in frame.faces]
        scored = self._infer(np.stack([face.pixels for face in faces]), maps, method) if faces else Scored()
        parts, start = [], 0
        for piece in group:
            count = piece.crops if piece.error is None else 0
            parts.append(scored.part(start, count))
            start += count
        return parts

    def _infer(self, pixels: np.ndarray, maps: bool, method: str | None) -> Scored:
        scored = Scored()
        for start in range(0, len(pixels), self.batch_size):
            batch = normalize(pixels[start : start + self.batch_size], self.preprocessing)
            explanations, toward_fake = None, None
            if method is not None:
                p_fake, explanations, toward_fake = self.explain_batch(batch, method)
            if maps or method is None:
                p_fake, probabilities = self.forward_batch(batch, maps)
            scored.extend(Scored(p_fake.tolist(), list(probabilities.numpy()) if maps else [],
                                 list(explanations.numpy()) if explanations is not None else [],
                                 toward_fake.tolist() if toward_fake is not None else []))
        return scored


def explanation_method(explain: bool | str) -> str | None:
    """The method ``explain`` asks for: None for no explanations, ``rollout`` for ``True``, else its name."""
    if explain is False or explain is None:
        return None
    method = "rollout" if explain is True else explain
    if method not in METHODS:
        raise ValueError(f"explain must be True, False or one of {', '.join(METHODS)}, not {explain!r}")
    return method


@dataclass(frozen=True)
class Inputs:
    """Sources with folders and list files read, and their output names: made once for a run, so that any
    share of it (``iter_predict(inputs, only=...)``) names its files as the whole run does."""

    items: list[Source]
    names: OutputNames

    @classmethod
    def of(cls, sources: Inputs | Source | Iterable[Source]) -> Inputs:
        if isinstance(sources, Inputs):
            return sources
        items = _expand(sources)
        return cls(items, OutputNames(items))


def _expand(sources: Source | Iterable[Source]) -> list[Source]:
    if isinstance(sources, (str, Path, Image.Image, np.ndarray)):
        sources = [sources]
    inputs: list[Source] = []
    for source in sources:
        if isinstance(source, (str, Path)):
            inputs += expand_sources([source])
        elif isinstance(source, (Image.Image, np.ndarray)):
            inputs.append(source)
        else:
            raise TypeError(f"cannot read a {type(source).__name__}: pass paths, PIL images or uint8 arrays")
    return inputs


def _batches(pieces: Iterator[Prepared], batch_size: int) -> Iterator[list[Prepared]]:
    """Pieces, in order, grouped until a group holds a batch of crops, or ``KEPT_FRAMES`` whole frames."""
    group: list[Prepared] = []
    crops = kept = 0
    for piece in pieces:
        group.append(piece)
        crops += piece.crops
        kept += sum(frame.image is not None for frame in piece.frames)
        if crops >= batch_size or kept >= KEPT_FRAMES:
            yield group
            group, crops, kept = [], 0, 0
    if group:
        yield group


def _pieces_in_order(numbers: list[int], pieces: Callable[[int], Iterator[Prepared]],
                     workers: int) -> Iterator[Prepared]:
    """Worker threads prepare inputs ahead of the caller, each input's pieces passing through a queue of one:
    at most ``2 * workers`` inputs in flight, each holding two pieces at most, however long it is."""
    stop = threading.Event()

    def run(number: int, channel: Queue) -> None:
        try:
            for piece in pieces(number):
                if not offer(channel, piece, stop):
                    return
        except BaseException as error:  # a bug, not a bad input: raised again in the caller's thread
            offer(channel, error, stop)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        channels: deque[Queue] = deque()
        try:
            for number in numbers:
                channels.append(Queue(maxsize=1))
                pool.submit(run, number, channels[-1])
                if len(channels) > 2 * workers:
                    yield from _drain(channels.popleft())
            while channels:
                yield from _drain(channels.popleft())
        finally:
            stop.set()


def _drain(channel: Queue) -> Iterator[Prepared]:
    while True:
        item = channel.get()
        if isinstance(item, BaseException):
            raise item
        yield item
        if item.last:
            return
