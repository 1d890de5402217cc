"""Torch datasets over manifests, and the paired batch sampler."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..errors import MediaError
from ..media import load_image
from ..transforms import Preprocessing, normalize, resize_and_crop, resize_mask
from .manifest import FAKE, REAL, Sample

log = logging.getLogger(__name__)

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class FrameDataset(Dataset):
    """Face crops of a manifest as model inputs; an unreadable file is replaced by the next
    readable one and reported once, so an epoch never stops on it.

    ``self_blend``: every real frame also appears as a self-blended pseudo-fake (label fake), made
    from the frame and its 68 landmarks (``<frame>_lm68.npy`` beside it, as ``preprocess`` writes),
    so a detector can be trained from real videos alone; the manifest's own fakes are left out.

    ``mask_size``: items also carry the manipulation ``mask`` [1, S, S] in [0, 1] (through the image's
    geometry and augmentation) and ``has_mask``: empty for reals, the blend for pseudo-fakes, the
    sample's mask for fakes; a fake without one gets an empty mask and ``has_mask`` False.
    """

    def __init__(self, samples: list[Sample], preprocessing: Preprocessing, augment: Augment | None = None,
                 self_blend: bool = False, mask_size: int | None = None):
        self.samples = [s for s in samples if s.label == REAL] if self_blend else samples
        self.preprocessing = preprocessing
        self.augment = augment
        self.self_blend = self_blend
        self.mask_size = mask_size
        self.reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples) * (2 if self.self_blend else 1)

    def label(self, index: int) -> int:
        return FAKE if index >= len(self.samples) else self.samples[index].label

    def __getitem__(self, index: int) -> dict:
        count = len(self.samples)
        for offset in range(count):
            sample = self.samples[(index + offset) % count]
            try:
                image = np.asarray(load_image(sample.path))
                if index >= count:
                    image, mask = self._pseudo_fake(image, sample)
                else:
                    mask = read_mask(sample, image.shape[:2]) if self.mask_size else None
            except (MediaError, OSError, ValueError) as error:
                self._report(sample.path, error)
                continue
            return self._item(image, mask, self.label(index), index)
        raise MediaError("no file of the dataset can be read")

    def _item(self, image: np.ndarray, mask: np.ndarray | None, label: int, index: int) -> dict:
        if self.augment is not None and mask is not None:
            image, mask = self.augment(image, _generator(), mask)
        elif self.augment is not None:
            image = self.augment(image, _generator())
        crop = resize_and_crop(Image.fromarray(image), self.preprocessing)
        item = {"image": normalize(crop[None], self.preprocessing)[0], "label": label, "index": index}
        if self.mask_size:
            size = (self.mask_size, self.mask_size)
            target = np.zeros(size, np.float32) if mask is None else resize_mask(mask, self.preprocessing, size[0])
            item.update(mask=torch.from_numpy(target)[None], has_mask=label == REAL or mask is not None)
        return item

    def _pseudo_fake(self, image: np.ndarray, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        from .sbi import self_blend

        landmarks = np.load(Path(sample.path).with_name(Path(sample.path).stem + "_lm68.npy"))
        return self_blend(image, landmarks, _generator())

    def _report(self, path: str, error: Exception) -> None:
        if path not in self.reported:
            self.reported.add(path)
            log.warning("skipped unreadable file %s (%s)", path, error)


def read_mask(sample: Sample, shape: tuple[int, int]) -> np.ndarray | None:
    """A fake's mask as float32 in [0, 1] at the image's ``shape``, white = manipulated; None for a
    real or a fake without one."""
    if sample.label == REAL or sample.mask is None:
        return None
    with Image.open(sample.mask) as file:
        mask = file.convert("L")
    if mask.size != (shape[1], shape[0]):
        mask = mask.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    levels = np.asarray(mask, dtype=np.float32) / 255
    return 1.0 - levels if sample.mask_inverted else levels


def _generator() -> np.random.Generator:
    """Drawn from torch's generator, which Lightning seeds per run and per loader worker: the
    randomness is reproducible under a fixed seed and differs across epochs."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def source_video(sample: Sample) -> str:
    """The real video a fake was made from: FF++ names a fake ``<target>_<source>`` after its target."""
    dataset, _, video = sample.video.split("/", 2)
    return f"{dataset}/{video.split('_')[0]}"


def pairing(dataset: FrameDataset) -> tuple[list[int], list[list[int]], list[int]]:
    """Fake indices, the real indices each may be paired with, and all real indices: a
    pseudo-fake pairs with its own frame, a manifest fake with the frames of its source video."""
    count = len(dataset.samples)
    if dataset.self_blend:
        return list(range(count, 2 * count)), [[i] for i in range(count)], list(range(count))
    reals = [i for i, s in enumerate(dataset.samples) if s.label == REAL]
    reals_of: dict[str, list[int]] = defaultdict(list)
    for i in reals:
        dataset_name, _, video = dataset.samples[i].video.split("/", 2)
        reals_of[f"{dataset_name}/{video}"].append(i)
    fakes = [i for i, s in enumerate(dataset.samples) if s.label == FAKE]
    return fakes, [reals_of.get(source_video(dataset.samples[i]), []) for i in fakes], reals


class PairedBatchSampler(Sampler[list[int]]):
    """Batches in which every fake comes with a real frame of the video it was made from (GenD:
    paired real/fake data keeps the detector off identity and background shortcuts). Fakes without
    a real counterpart get a random real frame.

    Under data parallelism each of ``replicas`` ranks takes every ``replicas``-th batch of the same
    seeded epoch order, and every rank gets the same number of batches (the last ones wrap around to
    the start), so no rank waits on another at the end of an epoch.
    """

    def __init__(self, dataset: FrameDataset, batch_size: int, seed: int = 0, replicas: int = 1, rank: int = 0):
        if batch_size < 2:
            raise ValueError("paired batches need a batch size of at least 2")
        if not 0 <= rank < replicas:
            raise ValueError(f"rank {rank} is not one of {replicas} replicas")
        self.fakes, self.partners, self.reals = pairing(dataset)
        if not self.fakes or not self.reals:
            raise ValueError("paired batches need both real and fake frames")
        self.half = batch_size // 2
        self.seed = seed
        self.replicas = replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch: the order is a function of (seed, epoch), also on resume."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self._total() // self.replicas)

    def _total(self) -> int:
        return -(-len(self.fakes) // self.half)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.fakes))
        batches = []
        for start in range(0, len(order), self.half):
            batch = []
            for k in order[start : start + self.half]:
                pool = self.partners[k] or self.reals
                batch += [self.fakes[k], int(pool[rng.integers(len(pool))])]
            batches.append(batch)
        for number in range(self.rank, len(self) * self.replicas, self.replicas):
            yield batches[number % len(batches)]
