"""GenD's training augmentations on uint8 RGB arrays, without torchvision.

GenD (``src/dataset/augmentations.py``) composes torchvision ``transforms.v2`` ops on the PIL image
of a face crop, in this order: horizontal flip, random affine, Gaussian blur, colour jitter
(brightness, contrast), JPEG re-compression. Each op here draws its parameters the way the v2
transform does and computes what its PIL kernel computes:

- ``RandomHorizontalFlip(p=0.5)``.
- ``RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))``: angle ~ U(-10, 10),
  shifts ~ U(-0.1, 0.1) x width / height rounded to whole pixels, scale ~ U(0.9, 1.1), about the
  image centre; torchvision's defaults apply: nearest-neighbour sampling and a constant fill of 0
  (black corners), not a reflected border.
- ``RandomApply([GaussianBlur(7, sigma=(0.1, 2.0))], p=0.1)``: sigma ~ U(0.1, 2), a 7x7 kernel,
  reflected border (torch's ``reflect`` = OpenCV's ``BORDER_REFLECT_101``), rounded back to uint8.
- ``ColorJitter(brightness=0.1, contrast=0.1)``: factors ~ U(0.9, 1.1) applied in a random order
  with PIL's ``ImageEnhance`` (the kernels torchvision uses for PIL images).
- ``JPEG((40, 100))``: integer quality ~ U{40..100}, encoded and decoded by PIL.

GenD has no probability for the affine, jitter and JPEG ops (they always run); here every op has
one so each can be switched off alone. Geometric ops move a mask with the image; photometric ops
leave it alone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields

import cv2
import numpy as np
from PIL import Image, ImageEnhance

_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run and their ranges; the defaults are GenD's (``src/config.py``)."""

    flip_p: float = 0.5
    """Probability of a horizontal flip (GenD ``random_horizontal_flip`` 0.5)."""
    affine_p: float = 1.0
    """Probability of the random affine (GenD applies it to every image)."""
    affine_degrees: float = 10.0
    """Rotation drawn from U(-d, d) degrees (GenD ``random_affine_degrees`` 10)."""
    affine_translate: tuple[float, float] = (0.1, 0.1)
    """Largest shift as a fraction of width, height (GenD ``random_affine_translate`` [0.1, 0.1])."""
    affine_scale: tuple[float, float] = (0.9, 1.1)
    """Zoom drawn from U(lo, hi) (GenD ``random_affine_scale`` [0.9, 1.1])."""
    affine_interpolation: str = "nearest"
    """``nearest`` (torchvision RandomAffine's default, hence GenD's) or ``bilinear``."""
    affine_fill: int = 0
    """Value of the pixels the warp uncovers (torchvision's default fill 0)."""
    blur_p: float = 0.1
    """Probability of a Gaussian blur (GenD ``gaussian_blur_prob`` 0.1)."""
    blur_kernel: int = 7
    """Odd kernel side (GenD ``gaussian_blur_kernel_size`` 7)."""
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    """Sigma drawn from U(lo, hi) (GenD ``gaussian_blur_sigma`` [0.1, 2.0])."""
    jitter_p: float = 1.0
    """Probability of the colour jitter (GenD applies it to every image)."""
    brightness: float = 0.1
    """Brightness factor drawn from U(1 - b, 1 + b); 0 skips it (GenD ``color_jitter_brightness`` 0.1)."""
    contrast: float = 0.1
    """Contrast factor drawn from U(1 - c, 1 + c); 0 skips it (GenD ``color_jitter_contrast`` 0.1)."""
    jpeg_p: float = 1.0
    """Probability of JPEG re-compression (GenD applies it to every image)."""
    jpeg_quality: tuple[int, int] = (40, 100)
    """Quality drawn from the integers lo..hi inclusive (GenD ``jpeg_quality`` [40, 100])."""

    def __post_init__(self) -> None:
        for field in fields(self):
            if field.name.endswith("_p") and not 0.0 <= getattr(self, field.name) <= 1.0:
                raise ValueError(f"{field.name} is a probability in [0, 1], not {getattr(self, field.name)}")
        if self.affine_interpolation not in _INTERPOLATION:
            raise ValueError(
                f"affine_interpolation must be one of {sorted(_INTERPOLATION)}, not {self.affine_interpolation!r}"
            )
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be a positive odd number, not {self.blur_kernel}")
        for name in ("affine_scale", "blur_sigma", "jpeg_quality"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be a range (low, high) with 0 < low <= high, not {(low, high)}")
        if self.jpeg_quality[1] > 100:
            raise ValueError(f"jpeg_quality goes up to 100, not {self.jpeg_quality[1]}")
        if not 0.0 <= self.brightness < 1.0 or not 0.0 <= self.contrast < 1.0:
            raise ValueError("brightness and contrast are jitter amounts in [0, 1)")

    @classmethod
    def off(cls) -> AugmentConfig:
        """Every augmentation switched off (an identity, as GenD's ``Augmentations.get_empty``)."""
        return cls(flip_p=0.0, affine_p=0.0, blur_p=0.0, jitter_p=0.0, jpeg_p=0.0)


class Augmenter:
    """Applies an ``AugmentConfig`` in GenD's order; all randomness comes from the caller's generator."""

    def __init__(self, config: AugmentConfig | None = None):
        self.config = config or AugmentConfig()

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """uint8 RGB [H, W, 3] -> augmented image; with ``mask`` [H, W] (bool, uint8 or float), returns
        (image, mask). Inputs are never modified; an op that does not run returns its input as is."""
        _check_inputs(image, mask)
        cfg = self.config
        if rng.random() < cfg.flip_p:
            image, mask = hflip(image, mask)
        if rng.random() < cfg.affine_p:
            image, mask = random_affine(image, rng, cfg, mask)
        if rng.random() < cfg.blur_p:
            image = gaussian_blur(image, cfg.blur_kernel, rng.uniform(*cfg.blur_sigma))
        if rng.random() < cfg.jitter_p:
            image = color_jitter(image, rng, cfg.brightness, cfg.contrast)
        if rng.random() < cfg.jpeg_p:
            image = jpeg(image, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
        return image if mask is None else (image, mask)


def hflip(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror left-right; the mask, when given, is mirrored with the image."""
    flipped = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
    return np.ascontiguousarray(image[:, ::-1]), flipped


def affine_matrix(size: tuple[int, int], angle: float, translate: tuple[float, float], scale: float) -> np.ndarray:
    """torchvision's affine (rotation ``angle`` clockwise in degrees, then shift) about the image centre,
    as a 2x3 matrix mapping input pixels to output pixels; ``size`` is (height, width)."""
    height, width = size
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    theta = np.deg2rad(angle)
    linear = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    offset = centre + np.asarray(translate, dtype=np.float64) - linear @ centre
    return np.hstack([linear, offset[:, None]])


def random_affine(
    image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Parameters drawn as torchvision's ``RandomAffine`` draws them; the mask is warped by the same
    matrix with nearest-neighbour sampling and filled with 0 (torchvision's treatment of masks)."""
    height, width = image.shape[:2]
    angle = rng.uniform(-cfg.affine_degrees, cfg.affine_degrees)
    max_dx, max_dy = cfg.affine_translate[0] * width, cfg.affine_translate[1] * height
    translate = (round(rng.uniform(-max_dx, max_dx)), round(rng.uniform(-max_dy, max_dy)))
    scale = rng.uniform(*cfg.affine_scale)
    matrix = affine_matrix((height, width), angle, translate, scale)
    warped = cv2.warpAffine(
        image, matrix, (width, height), flags=_INTERPOLATION[cfg.affine_interpolation],
        borderMode=cv2.BORDER_CONSTANT, borderValue=(cfg.affine_fill,) * 3,
    )
    if mask is None:
        return warped, None
    source = mask.astype(np.uint8) if mask.dtype == bool else mask
    moved = cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped, moved.astype(mask.dtype, copy=False)


def gaussian_blur(image: np.ndarray, kernel: int, sigma: float) -> np.ndarray:
    """torchvision's ``gaussian_blur``: float convolution, reflected border, rounded to uint8."""
    blurred = cv2.GaussianBlur(image.astype(np.float32), (kernel, kernel), sigmaX=sigma, sigmaY=sigma,
                               borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def color_jitter(image: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float) -> np.ndarray:
    """``ColorJitter(brightness, contrast)`` on a PIL image: both factors drawn, applied in a random order."""
    pil = Image.fromarray(image)
    brightness_factor = rng.uniform(1 - brightness, 1 + brightness)
    contrast_factor = rng.uniform(1 - contrast, 1 + contrast)
    for op in rng.permutation(2):
        if op == 0 and brightness > 0:
            pil = ImageEnhance.Brightness(pil).enhance(brightness_factor)
        elif op == 1 and contrast > 0:
            pil = ImageEnhance.Contrast(pil).enhance(contrast_factor)
    return np.asarray(pil).copy()


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` with PIL's defaults (4:2:0 chroma) and decode, as torchvision's
    ``JPEG`` does for PIL images."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB")).copy()


def _check_inputs(image: np.ndarray, mask: np.ndarray | None) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"augmentations take uint8 RGB images [H, W, 3], got {image.dtype} {image.shape}")
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"the mask must be [H, W] = {image.shape[:2]}, got {mask.shape}")
