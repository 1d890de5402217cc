"""Self-blended images: pseudo-fakes made from one real face (Shiohara & Yamasaki, CVPR 2022).

A copy of the face (the *source*) is altered in colour and frequency content, shifted and
rescaled a little, and blended back onto the unaltered face (the *target*) through a soft mask
built from the landmark hull. The result carries the traces face swaps leave (blending
boundaries, colour and sharpness mismatches, slight landmark misalignment) without any identity
change, and the mask marks where they are. Steps and ranges follow the authors' code
(``mapooon/SelfBlendedImages``: ``src/utils/sbi.py``, ``src/utils/blend.py``, ``funcs.py``; the
hull shapes from ``AlgoHunt/Face-Xray`` ``DeepFakeMask.py``, which their README installs):

1. Mask: one of four landmark hulls, uniformly (``dfl_full``, ``extended``, ``components``,
   ``facehull``), filled on the integer-truncated landmarks.
2. Source-target generator, source only: RGB shift (p 0.3, ±20 per channel); HSV shift (±0.3 in
   OpenCV's uint8 HSV units, as albumentations applies it: at most one level, plus the HSV round
   trip); brightness ±0.1 and contrast ±0.1 (albumentations' LUT, by the maximum); then one of
   downscale (x1/2 or x1/4 nearest, back up bilinear) or sharpen (alpha U(0.2, 0.5), lightness
   U(0.5, 1.0)).
3. The source and the mask shift by U(±3 %) of the width and U(±1.5 %) of the height and scale by
   U(0.95, 1/0.95), each axis drawn on its own (albumentations ``Affine``: bilinear image, nearest
   mask, zero border).
4. The mask alone is deformed elastically (alpha 50, sigma 7: albumentations ``ElasticTransform``).
5. Blend mask: the mask is resized to a random 192..256 x 192..256, blurred with an odd kernel
   5..25 (OpenCV's sigma for it), normalised, cut to its plateau (values below 1 set to 0), blurred
   again with an odd kernel 5..25 and sigma 5..45, normalised, resized back, and scaled by a blend
   ratio from (0.25, 0.5, 0.75, 1, 1, 1).
6. fake = mask x source + (1 - mask) x target, truncated to uint8.

One deliberate difference: the authors alter the target instead of the source half of the time,
and then use that altered target as the paired real image. Here the target is always the input,
so pixels where the mask is 0 are exactly the input's and the caller's real image stays the pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HULL_TYPES = ("dfl_full", "extended", "components", "facehull")
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SelfBlendConfig:
    """The generator's ranges; the defaults are the authors' (see the module docstring)."""

    hull_types: tuple[str, ...] = HULL_TYPES
    """Mask shapes drawn uniformly."""
    rgb_shift_p: float = 0.3
    """Probability of the per-channel RGB shift."""
    rgb_shift: float = 20.0
    """Each channel shifts by U(-s, s) levels."""
    hsv_shift: float = 0.3
    """Hue, saturation and value shift by U(-s, s) in OpenCV's uint8 HSV units."""
    brightness: float = 0.1
    """Brightness offset U(-b, b) x 255."""
    contrast: float = 0.1
    """Contrast gain 1 + U(-c, c)."""
    downscale_ratios: tuple[int, ...] = (2, 4)
    """Downscale factors for the frequency alteration (the other half of the time: sharpen)."""
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    """Sharpen blend with the identity kernel, U(lo, hi)."""
    sharpen_lightness: tuple[float, float] = (0.5, 1.0)
    """Sharpen kernel centre 8 + U(lo, hi)."""
    translate: tuple[float, float] = (0.03, 0.015)
    """Largest source shift as a fraction of width, height."""
    scale: tuple[float, float] = (0.95, 1 / 0.95)
    """Source scale range, drawn for each axis."""
    elastic_alpha: float = 50.0
    """Elastic displacement magnitude (pixels per unit of the smoothed noise)."""
    elastic_sigma: float = 7.0
    """Elastic displacement smoothness."""
    blur_size: tuple[int, int] = (192, 256)
    """Side range (inclusive) at which the mask is blurred."""
    blur_kernel: tuple[int, int] = (5, 25)
    """Odd kernel sides (inclusive) of both mask blurs."""
    blur_sigma: tuple[int, int] = (5, 45)
    """Integer sigma range (inclusive) of the second mask blur."""
    blend_ratios: tuple[float, ...] = BLEND_RATIOS
    """Peak opacity of the source, drawn uniformly from this list."""

    def __post_init__(self) -> None:
        unknown = set(self.hull_types) - set(HULL_TYPES)
        if not self.hull_types or unknown:
            raise ValueError(f"hull_types must be a non-empty subset of {HULL_TYPES}, not {self.hull_types}")
        if self.blur_kernel[0] % 2 == 0 or self.blur_kernel[0] < 1:
            raise ValueError(f"blur_kernel must start at a positive odd side, not {self.blur_kernel[0]}")
        if not self.blend_ratios or not all(0.0 < r <= 1.0 for r in self.blend_ratios):
            raise ValueError(f"blend_ratios must be in (0, 1], not {self.blend_ratios}")


def self_blend(
    image: np.ndarray, landmarks68: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A pseudo-fake of ``image`` (uint8 RGB [H, W, 3]) from its 68 iBUG landmarks [68, 2] in the
    image's pixels: (fake uint8 [H, W, 3], blending mask float32 [H, W] in [0, 1]). Deterministic
    given ``rng``."""
    cfg = config or SelfBlendConfig()
    image, landmarks68 = _checked(image, landmarks68)
    kind = cfg.hull_types[rng.integers(len(cfg.hull_types))]
    mask = hull_mask(landmarks68, image.shape[:2], kind)
    source = alter_source(image, rng, cfg)
    source, mask = _shift_and_scale(source, mask, rng, cfg)
    mask = _elastic(mask, rng, cfg)
    blend = blend_mask(mask, rng, cfg)
    blend *= cfg.blend_ratios[rng.integers(len(cfg.blend_ratios))]
    weight = blend[..., None]
    fake = weight * source.astype(np.float32) + (1.0 - weight) * image.astype(np.float32)
    return fake.astype(np.uint8), blend


def hull_mask(landmarks68: np.ndarray, shape: tuple[int, int], kind: str = "facehull") -> np.ndarray:
    """A binary float32 [H, W] mask of the face from its 68 landmarks, in one of the four shapes
    of Face X-ray's ``DeepFakeMask``: the whole hull, DeepFaceLab's three-part hull, the
    eight-part component hull, or the component hull with the brows raised up the forehead."""
    points = np.asarray(landmarks68).astype(np.int32)
    if kind == "facehull":
        parts = [points]
    elif kind == "dfl_full":
        parts = [
            np.concatenate([points[0:17], points[48:68], points[0:1], points[8:9], points[16:17]]),
            np.concatenate([points[27:31], points[33:34]]),
            np.concatenate([points[17:27], points[0:1], points[27:28], points[16:17], points[33:34]]),
        ]
    elif kind == "components":
        parts = _components(points)
    elif kind == "extended":
        parts = _components(_raise_brows(points))
    else:
        raise ValueError(f"hull kind must be one of {HULL_TYPES}, not {kind!r}")
    mask = np.zeros(shape, dtype=np.float32)
    for part in parts:
        cv2.fillConvexPoly(mask, cv2.convexHull(part), 1.0)
    return mask


def alter_source(image: np.ndarray, rng: np.random.Generator, cfg: SelfBlendConfig) -> np.ndarray:
    """Step 2: colour (RGB shift, HSV shift, brightness/contrast), then downscale or sharpen."""
    altered = image
    if rng.random() < cfg.rgb_shift_p:
        altered = _add_per_channel(altered, rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, size=3))
    altered = _shift_hsv(altered, rng.uniform(-cfg.hsv_shift, cfg.hsv_shift, size=3))
    gain = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    offset = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
    altered = _lut(altered, np.arange(256, dtype=np.float32) * gain + offset)
    if rng.random() < 0.5:
        return _downscale(altered, cfg.downscale_ratios[rng.integers(len(cfg.downscale_ratios))])
    return _sharpen(altered, rng.uniform(*cfg.sharpen_alpha), rng.uniform(*cfg.sharpen_lightness))


def blend_mask(mask: np.ndarray, rng: np.random.Generator, cfg: SelfBlendConfig) -> np.ndarray:
    """Step 5 without the ratio: a soft float32 mask peaking at exactly 1 inside the hull."""
    height, width = mask.shape
    low, high = cfg.blur_size
    size = (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
    small = cv2.resize(mask, size)
    if small.max() <= 0:
        raise ValueError("the face mask covers no pixel of the image: do the landmarks lie inside it?")
    first = _odd(rng, cfg.blur_kernel)
    small = cv2.GaussianBlur(small, (first, first), 0)
    small /= small.max()
    small[small < 1.0 - 1e-6] = 0.0  # the authors' "< 1", tolerant of float rounding on the plateau
    second = _odd(rng, cfg.blur_kernel)
    sigma = float(rng.integers(cfg.blur_sigma[0], cfg.blur_sigma[1] + 1))
    small = cv2.GaussianBlur(small, (second, second), sigma)
    small /= small.max()
    return np.clip(cv2.resize(small, (width, height)), 0.0, 1.0)


def _checked(image: np.ndarray, landmarks68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"self_blend takes a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
    landmarks68 = np.asarray(landmarks68, dtype=np.float32)
    if landmarks68.shape != (68, 2):
        raise ValueError(f"self_blend takes the 68 iBUG landmarks [68, 2], got {landmarks68.shape}")
    return image, landmarks68


def _components(points: np.ndarray) -> list[np.ndarray]:
    chin = points[8:9]
    return [
        np.concatenate([points[0:9], points[17:18]]),
        np.concatenate([points[8:17], points[26:27]]),
        np.concatenate([points[17:20], chin]),
        np.concatenate([points[24:27], chin]),
        np.concatenate([points[19:25], chin]),
        np.concatenate([points[17:22], points[27:28], points[31:36], chin]),
        np.concatenate([points[22:27], points[27:28], points[31:36], chin]),
        np.concatenate([points[27:31], points[31:36]]),
    ]


def _raise_brows(points: np.ndarray) -> np.ndarray:
    """The brows moved up by half their distance to the upper eyelids (integer arithmetic, as in
    ``DeepFakeMask.extended``)."""
    raised = points.copy()
    outer_left = (points[36] + (points[36] + points[0]) // 2) // 2
    outer_right = (points[45] + (points[16] + points[45]) // 2) // 2
    lid_left = np.stack([outer_left, points[36], points[37], points[38], points[39]])
    lid_right = np.stack([points[42], points[43], points[44], points[45], outer_right])
    raised[17:22] = points[17:22] + (points[17:22] - lid_left) // 2
    raised[22:27] = points[22:27] + (points[22:27] - lid_right) // 2
    return raised


def _lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    return cv2.LUT(image, np.clip(table, 0, 255).astype(np.uint8))


def _add_per_channel(image: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    levels = np.arange(256, dtype=np.float32)
    return np.dstack([_lut(np.ascontiguousarray(image[..., c]), levels + shifts[c]) for c in range(3)])


def _shift_hsv(image: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """albumentations' uint8 ``shift_hsv``: shifted lookup tables truncated to integers."""
    hue, saturation, value = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    levels = np.arange(256, dtype=np.int16)
    hue = cv2.LUT(hue, np.mod(levels + shifts[0], 180).astype(np.uint8))
    saturation = _lut(saturation, levels + shifts[1])
    value = _lut(value, levels + shifts[2])
    return cv2.cvtColor(cv2.merge((hue, saturation, value)), cv2.COLOR_HSV2RGB)


def _downscale(image: np.ndarray, ratio: int) -> np.ndarray:
    height, width = image.shape[:2]
    small = cv2.resize(image, (int(width / ratio), int(height / ratio)), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _sharpen(image: np.ndarray, alpha: float, lightness: float) -> np.ndarray:
    identity = np.zeros((3, 3), dtype=np.float32)
    identity[1, 1] = 1.0
    effect = -np.ones((3, 3), dtype=np.float32)
    effect[1, 1] = 8.0 + lightness
    return cv2.filter2D(image, -1, (1 - alpha) * identity + alpha * effect)


def _shift_and_scale(
    source: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: SelfBlendConfig
) -> tuple[np.ndarray, np.ndarray]:
    height, width = mask.shape
    shift = (rng.uniform(-cfg.translate[0], cfg.translate[0]) * width,
             rng.uniform(-cfg.translate[1], cfg.translate[1]) * height)
    scale = rng.uniform(*cfg.scale, size=2)
    centre = np.array([width / 2 - 0.5, height / 2 - 0.5])
    offset = centre + np.asarray(shift) - scale * centre
    matrix = np.array([[scale[0], 0.0, offset[0]], [0.0, scale[1], offset[1]]])
    size = (width, height)
    moved = cv2.warpAffine(source, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    moved_mask = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
    return moved, moved_mask


def _elastic(mask: np.ndarray, rng: np.random.Generator, cfg: SelfBlendConfig) -> np.ndarray:
    height, width = mask.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    maps = []
    for grid in (grid_x, grid_y):
        noise = (rng.random((height, width)) * 2 - 1).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), cfg.elastic_sigma, borderType=cv2.BORDER_REFLECT)
        maps.append(grid + cfg.elastic_alpha * smooth)
    return cv2.remap(mask, maps[0], maps[1], interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)


def _odd(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    """An odd number drawn uniformly from low, low + 2, ..., up to high (Python's ``randrange(low, high + 1, 2)``)."""
    return int(bounds[0] + 2 * rng.integers((bounds[1] - bounds[0]) // 2 + 1))
