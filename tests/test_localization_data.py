"""Localization data: Dolos folders (inverted masks), masks beside frames, self-blended fakes, and the
targets the dataset gives for each: white where manipulated, empty for reals, flagged when missing."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipforensics.data.dataset import FrameDataset
from clipforensics.data.manifest import FAKE, REAL, load_manifest
from clipforensics.transforms import Preprocessing

DECLIP = Preprocessing(size=224, mode="squash", interpolation="bilinear")


def _image(path: Path, size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), np.uint8)).save(path)


def _square_mask(path: Path, white_outside: bool, size: int = 64) -> None:
    """A mask whose left half is manipulated, written white-untouched (Dolos) or white-manipulated."""
    manipulated = np.zeros((size, size), bool)
    manipulated[:, : size // 2] = True
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(((~manipulated if white_outside else manipulated) * 255).astype(np.uint8)).save(path)


@pytest.fixture
def dolos(tmp_path) -> Path:
    root = tmp_path / "celebahq"
    for split in ("train", "valid"):
        for generator in ("lama", "ldm"):
            _image(root / "fake" / generator / "images" / split / "1.png")
            _square_mask(root / "fake" / generator / "masks" / split / "1.png", white_outside=True)
        _image(root / "real" / split / "2.png")
    return root


def test_a_dolos_root_gives_every_generator_and_the_reals_of_one_split(dolos):
    samples = load_manifest(dolos, split="train")

    assert [(s.dataset, s.source, s.label) for s in samples] == [
        ("celebahq", "lama", FAKE), ("celebahq", "ldm", FAKE), ("celebahq", "real", REAL)]
    assert all("/train/" in s.path for s in samples)
    assert samples[0].mask.endswith("lama/masks/train/1.png") and samples[0].mask_inverted
    assert samples[2].mask is None


def test_one_dolos_generator_folder_gives_its_fakes_only_as_declip_trains(dolos):
    samples = load_manifest(dolos / "fake" / "lama")

    assert [(s.dataset, s.source, Path(s.path).parent.name) for s in samples] == [
        ("celebahq", "lama", "train"), ("celebahq", "lama", "valid")]


def test_dolos_masks_are_inverted_so_the_target_is_white_where_manipulated(dolos):
    dataset = FrameDataset(load_manifest(dolos, split="train"), DECLIP, mask_size=256)

    fake, real = dataset[0], dataset[2]

    assert fake["mask"].shape == (1, 256, 256) and fake["has_mask"]
    assert fake["mask"][0, :, :120].min() == 1.0 and fake["mask"][0, :, 136:].max() == 0.0
    assert real["label"] == REAL and real["has_mask"] and real["mask"].max() == 0.0


def test_a_mask_beside_a_frame_is_its_target_and_a_fake_without_one_is_flagged(tmp_path):
    _image(tmp_path / "FF" / "DF" / "000_003" / "000.png")
    _square_mask(tmp_path / "FF" / "DF" / "000_003" / "000_mask.png", white_outside=False)
    _image(tmp_path / "FF" / "DF" / "000_003" / "001.png")

    samples = load_manifest(tmp_path)
    dataset = FrameDataset(samples, DECLIP, mask_size=64)

    assert [Path(s.mask).name if s.mask else None for s in samples] == ["000_mask.png", None]
    masked, unmasked = dataset[0], dataset[1]
    assert masked["has_mask"] and masked["mask"][0, :, :30].min() == 1.0 and masked["mask"][0, :, 34:].max() == 0
    assert unmasked["label"] == FAKE and not unmasked["has_mask"] and unmasked["mask"].max() == 0.0


def test_a_self_blended_fake_carries_its_blend_as_the_target(real_faces):
    dataset = FrameDataset(load_manifest(real_faces), DECLIP, self_blend=True, mask_size=256)
    half = len(dataset) // 2

    real, fake = dataset[0], dataset[half]

    assert real["mask"].max() == 0.0 and fake["label"] == FAKE and fake["has_mask"]
    assert 0.02 < fake["mask"].mean() < 0.9, "the blend covers part of the face"
