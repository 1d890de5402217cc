"""Self-blended pseudo-fakes from a real aligned face: a soft mask on the face, the rest untouched."""

from dataclasses import replace

import numpy as np
import pytest
from skimage import data

from clipforensics.data.sbi import BLEND_RATIOS, HULL_TYPES, SelfBlendConfig, hull_mask, self_blend
from clipforensics.faces.align import align_face
from clipforensics.faces.detection import DlibHogDetector

SEEDS = range(8)


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut aligned the DeepfakeBench way (256 px) and her 68 landmarks in the crop."""
    frame = data.astronaut()
    found = DlibHogDetector().detect(frame)[0]
    aligned = align_face(frame, found.landmarks, "deepfakebench", 256)
    return aligned.crop, aligned.to_crop(found.landmarks68)


def _hull_box(landmarks: np.ndarray, margin: float = 0.1) -> tuple[slice, slice]:
    """The landmarks' bounding box enlarged by ``margin`` of its size on every side."""
    (x0, y0), (x1, y1) = landmarks.min(0), landmarks.max(0)
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    return slice(max(int(y0 - dy), 0), int(y1 + dy) + 1), slice(max(int(x0 - dx), 0), int(x1 + dx) + 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_self_blend_is_a_uint8_image_and_a_soft_mask_peaking_at_a_blend_ratio(face, seed):
    image, landmarks = face

    fake, mask = self_blend(image, landmarks, np.random.default_rng(seed))

    assert fake.shape == image.shape and fake.dtype == np.uint8
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert min(abs(mask.max() - ratio) for ratio in BLEND_RATIOS) < 1e-3


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mask_lies_on_the_face_and_the_rest_of_the_image_is_untouched(face, seed):
    image, landmarks = face

    fake, mask = self_blend(image, landmarks, np.random.default_rng(seed))

    assert mask[_hull_box(landmarks)].sum() >= 0.95 * mask.sum()
    assert 0.05 < (mask > 0).mean() < 0.6
    untouched = mask == 0
    np.testing.assert_array_equal(fake[untouched], image[untouched])


def test_at_full_opacity_the_face_is_replaced_by_the_altered_source(face):
    image, landmarks = face
    config = SelfBlendConfig(blend_ratios=(1.0,))

    fake, mask = self_blend(image, landmarks, np.random.default_rng(0), config)

    inside = mask > 0.5
    assert inside.mean() > 0.05
    assert (fake[inside] != image[inside]).any(axis=-1).mean() > 0.9


@pytest.mark.parametrize("kind", HULL_TYPES)
def test_every_hull_shape_can_be_drawn_and_stays_on_the_face(face, kind):
    image, landmarks = face
    config = SelfBlendConfig(hull_types=(kind,))

    _, mask = self_blend(image, landmarks, np.random.default_rng(1), config)

    assert (mask > 0).any()
    assert mask[_hull_box(landmarks)].sum() >= 0.95 * mask.sum()


def test_the_hull_masks_are_binary_and_cover_the_landmarks(face):
    image, landmarks = face
    inner = landmarks[27:36].astype(int)  # the nose lies inside every hull shape

    for kind in HULL_TYPES:
        mask = hull_mask(landmarks, image.shape[:2], kind)
        assert set(np.unique(mask)) == {0.0, 1.0}
        assert mask[inner[:, 1], inner[:, 0]].all()
    full = hull_mask(landmarks, image.shape[:2], "facehull")
    extended = hull_mask(landmarks, image.shape[:2], "extended")
    assert extended[: int(landmarks[17:27, 1].min())].sum() > full[: int(landmarks[17:27, 1].min())].sum()


def test_the_same_seed_gives_the_same_fake(face):
    image, landmarks = face

    first = self_blend(image, landmarks, np.random.default_rng(7))
    second = self_blend(image, landmarks, np.random.default_rng(7))

    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_different_seeds_give_different_masks(face):
    image, landmarks = face

    masks = [self_blend(image, landmarks, np.random.default_rng(seed))[1] for seed in SEEDS]

    assert all(not np.array_equal(masks[0], other) for other in masks[1:])


def test_the_input_is_not_modified(face):
    image, landmarks = face
    before = image.copy()

    self_blend(image, landmarks, np.random.default_rng(0))

    np.testing.assert_array_equal(image, before)


def test_bad_inputs_are_refused_with_a_reason(face):
    image, landmarks = face
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        self_blend(image.astype(np.float32), landmarks, rng)
    with pytest.raises(ValueError, match="68"):
        self_blend(image, landmarks[:5], rng)
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(image, landmarks + 1000, rng)
    with pytest.raises(ValueError, match="hull_types"):
        replace(SelfBlendConfig(), hull_types=("oval",))
