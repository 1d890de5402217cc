"""GenD's training augmentations: each one switchable, reproducible, and fair to the mask."""

from dataclasses import replace

import numpy as np
import pytest
from skimage import data

from clipforensics.data.augment import AugmentConfig, Augmenter, affine_matrix

OFF = AugmentConfig.off()
ONLY = {
    "flip": replace(OFF, flip_p=1.0),
    "affine": replace(OFF, affine_p=1.0),
    "blur": replace(OFF, blur_p=1.0, blur_sigma=(1.0, 2.0)),  # sigma near 0.1 barely blurs: rightly so
    "jitter": replace(OFF, jitter_p=1.0),
    "jpeg": replace(OFF, jpeg_p=1.0),
}
PHOTOMETRIC = ("blur", "jitter", "jpeg")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[::2, ::2])


@pytest.fixture(scope="module")
def mask(image) -> np.ndarray:
    """A soft, left-right asymmetric mask, so flips and warps show."""
    mask = np.zeros(image.shape[:2], dtype=np.float32)
    mask[40:120, 30:90] = 1.0
    mask[60:80, 30:90] = 0.5
    return mask


def test_the_defaults_are_gends():
    cfg = AugmentConfig()

    assert (cfg.flip_p, cfg.affine_p, cfg.blur_p, cfg.jitter_p, cfg.jpeg_p) == (0.5, 1.0, 0.1, 1.0, 1.0)
    assert (cfg.affine_degrees, cfg.affine_translate, cfg.affine_scale) == (10.0, (0.1, 0.1), (0.9, 1.1))
    assert (cfg.affine_interpolation, cfg.affine_fill) == ("nearest", 0)
    assert (cfg.blur_kernel, cfg.blur_sigma) == (7, (0.1, 2.0))
    assert (cfg.brightness, cfg.contrast, cfg.jpeg_quality) == (0.1, 0.1, (40, 100))


@pytest.mark.parametrize("name", sorted(ONLY))
def test_each_augmentation_changes_the_image_when_forced_on(image, name):
    out = Augmenter(ONLY[name])(image, np.random.default_rng(0))

    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)


def test_everything_switched_off_is_the_identity(image, mask):
    out, out_mask = Augmenter(OFF)(image, np.random.default_rng(0), mask=mask)

    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(out_mask, mask)


@pytest.mark.parametrize("name", sorted(ONLY))
def test_switching_one_augmentation_off_leaves_the_image_alone(image, name):
    others_off = replace(AugmentConfig(), **{f"{other}_p": 0.0 for other in ONLY if other != name})
    this_off = replace(others_off, **{f"{name}_p": 0.0})

    out = Augmenter(this_off)(image, np.random.default_rng(0))

    np.testing.assert_array_equal(out, image)


def test_the_same_seed_gives_the_same_output(image, mask):
    augment = Augmenter(replace(AugmentConfig(), blur_p=0.5))
    for seed in range(5):
        first = augment(image, np.random.default_rng(seed), mask=mask)
        second = augment(image, np.random.default_rng(seed), mask=mask)
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_array_equal(first[1], second[1])


def test_different_seeds_give_different_outputs(image):
    augment = Augmenter()
    outputs = [augment(image, np.random.default_rng(seed)) for seed in range(4)]

    assert all(not np.array_equal(outputs[0], other) for other in outputs[1:])


def test_the_flip_mirrors_the_mask_with_the_image(image, mask):
    out, out_mask = Augmenter(ONLY["flip"])(image, np.random.default_rng(0), mask=mask)

    np.testing.assert_array_equal(out, image[:, ::-1])
    np.testing.assert_array_equal(out_mask, mask[:, ::-1])
    assert out_mask.dtype == mask.dtype


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_augmentations_leave_the_mask_untouched(image, mask, name):
    out, out_mask = Augmenter(ONLY[name])(image, np.random.default_rng(0), mask=mask)

    assert not np.array_equal(out, image)
    np.testing.assert_array_equal(out_mask, mask)


def test_the_affine_keeps_shape_and_dtype_and_moves_the_mask_with_the_image(image, mask):
    rng = np.random.default_rng(3)
    out, out_mask = Augmenter(ONLY["affine"])(image, rng, mask=mask)

    assert out.shape == image.shape and out.dtype == np.uint8
    assert out_mask.shape == mask.shape and out_mask.dtype == mask.dtype
    assert not np.array_equal(out_mask, mask)
    # nearest-neighbour sampling: the mask keeps its values, and an all-ones image marks where
    # the warp lands, so the mask never appears where the image is fill
    assert set(np.unique(out_mask)) <= set(np.unique(mask))
    ones = np.full_like(image, 255)
    covered, _ = Augmenter(ONLY["affine"])(ones, np.random.default_rng(3), mask=mask)
    assert out_mask[covered[..., 0] == 0].max() == 0


def test_a_boolean_mask_stays_boolean(image, mask):
    _, out_mask = Augmenter(ONLY["affine"])(image, np.random.default_rng(1), mask=mask > 0)

    assert out_mask.dtype == bool and out_mask.any()


def test_the_affine_matrix_is_torchvisions_rotation_about_the_centre_then_shift():
    matrix = affine_matrix((101, 201), angle=90.0, translate=(3.0, -2.0), scale=2.0)
    centre = np.array([100.0, 50.0])

    np.testing.assert_allclose(matrix[:, :2] @ centre + matrix[:, 2], centre + [3.0, -2.0], atol=1e-9)
    # +90 degrees turns the x axis onto the y axis (clockwise on screen), scaled by 2
    np.testing.assert_allclose(matrix[:, :2] @ [1.0, 0.0], [0.0, 2.0], atol=1e-9)


def test_a_blur_with_sigma_0_1_leaves_the_image_as_it_is(image):
    out = Augmenter(replace(ONLY["blur"], blur_sigma=(0.1, 0.1)))(image, np.random.default_rng(0))

    np.testing.assert_array_equal(out, image)


def test_jpeg_quality_is_drawn_from_the_inclusive_range(image):
    high = Augmenter(replace(ONLY["jpeg"], jpeg_quality=(100, 100)))(image, np.random.default_rng(0))
    low = Augmenter(replace(ONLY["jpeg"], jpeg_quality=(40, 40)))(image, np.random.default_rng(0))

    error = [np.abs(out.astype(int) - image).mean() for out in (high, low)]
    assert 0 < error[0] < error[1]


@pytest.mark.parametrize(
    "bad", [{"flip_p": 1.5}, {"blur_kernel": 6}, {"affine_interpolation": "cubic"}, {"jpeg_quality": (40, 101)},
            {"blur_sigma": (2.0, 0.1)}, {"brightness": -0.1}],
)
def test_an_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)


def test_inputs_are_checked(image, mask):
    augment = Augmenter()
    with pytest.raises(ValueError, match="uint8 RGB"):
        augment(image.astype(np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask"):
        augment(image, np.random.default_rng(0), mask=mask[:-1])
