"""Exact CLIP, DeCLIP, DINOv3 and Perception Encoder preprocessing, batched, driven by the model's own config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("crop", "squash", "resize-float")
CROP_OFFSETS = ("floor", "round")

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the model's input.

    ``mode="crop"``: shortest side to ``size`` then centre crop (CLIP image processor);
    ``mode="squash"``: the whole image resized to ``size`` x ``size`` (DeCLIP);
    ``mode="resize-float"``: the whole image resized to ``size`` x ``size`` in floating point, antialiased
    (transformers' ``DINOv3ViTImageProcessorFast``), so its pixels are float32 on the 0-255 scale, not uint8.

    ``crop_offset``: where an odd excess puts the centre crop: ``floor`` as Hugging Face's image processors,
    ``round`` (half to even) as torchvision's ``CenterCrop``, which timm's transforms use.
    """

    size: int = 224
    mode: str = "crop"
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    crop_offset: str = "floor"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"preprocessing mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.interpolation not in _RESAMPLE:
            raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}, not {self.interpolation!r}")
        if self.crop_offset not in CROP_OFFSETS:
            raise ValueError(f"crop_offset must be one of {', '.join(CROP_OFFSETS)}, not {self.crop_offset!r}")

    def crop_start(self, excess: int) -> int:
        """The first row (or column) of the centre crop when the resized side exceeds ``size`` by ``excess``."""
        return int(round(excess / 2.0)) if self.crop_offset == "round" else excess // 2

    @property
    def squashes(self) -> bool:
        """Whether the whole image is stretched to the square input (no crop)."""
        return self.mode != "crop"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})


def resize_and_crop(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """[size, size, 3] exactly as the reference processors produce it before normalisation: uint8, or
    float32 on the 0-255 scale for ``resize-float``."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    if prep.mode == "resize-float":
        return _resize_float(np.asarray(image), prep)
    resample = _RESAMPLE[prep.interpolation]
    if prep.mode == "squash":
        return np.asarray(image.resize((prep.size, prep.size), resample))
    width, height = image.size
    short, long = sorted((width, height))
    new_long = int(prep.size * long / short)
    target = (prep.size, new_long) if width <= height else (new_long, prep.size)
    if target != (width, height):
        image = image.resize(target, resample)
    array = np.asarray(image)
    top = prep.crop_start(array.shape[0] - prep.size)
    left = prep.crop_start(array.shape[1] - prep.size)
    return array[top : top + prep.size, left : left + prep.size]


def _resize_float(array: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Resized in float32 with antialiasing, as ``torch.nn.functional.interpolate`` does it; the scale (0-255)
    is kept, so ``normalize`` reads it as it reads uint8 pixels."""
    pixels = torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1)[None]
    resized = F.interpolate(pixels, size=(prep.size, prep.size), mode=prep.interpolation, antialias=True,
                            align_corners=False)
    return resized[0].permute(1, 2, 0).contiguous().numpy()


def resize_mask(mask: np.ndarray, prep: Preprocessing, size: int) -> np.ndarray:
    """A mask [H, W] in [0, 1] through the image's geometry (``prep``'s squash, or shortest side and
    centre crop) to float32 [size, size], bilinear on 8 bits as DeCLIP resizes its masks."""
    levels = (np.clip(mask, 0.0, 1.0) * 255).round().astype(np.uint8)
    geometry = replace(prep, size=size, interpolation="bilinear", mode="squash" if prep.squashes else "crop")
    return resize_and_crop(Image.fromarray(levels).convert("RGB"), geometry)[..., 0].astype(np.float32) / 255


def map_to_image(values: np.ndarray, prep: Preprocessing, shape: tuple[int, int]) -> np.ndarray:
    """A map over the model's input (float [h, w]) back onto the image it came from ([H, W], bilinear):
    stretched over the whole image for ``squash`` and ``resize-float``, over the centre crop for ``crop`` (0
    outside it)."""
    height, width = shape
    if prep.squashes:
        return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    short, long = sorted((width, height))
    scale = short / prep.size
    offset = prep.crop_start(int(prep.size * long / short) - prep.size) * scale
    side = round(prep.size * scale)
    top, left = (round(offset), 0) if height > width else (0, round(offset))
    placed = np.zeros(shape, np.float32)
    crop = cv2.resize(values, (side, side), interpolation=cv2.INTER_LINEAR)
    placed[top : top + side, left : left + side] = crop[: height - top, : width - left]
    return placed


def normalize(batch: np.ndarray | torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """uint8 (or float on the 0-255 scale) [B, H, W, 3] to float32 [B, 3, H, W] with the config's mean and std. An
    array is cast by NumPy (the one copy needed), so a read-only one (as ``np.asarray`` gives of a PIL image) is read,
    never shared."""
    if isinstance(batch, np.ndarray):
        pixels = torch.from_numpy(batch.astype(np.float32)).permute(0, 3, 1, 2).div_(255.0)
    else:
        pixels = batch.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    mean = torch.tensor(prep.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float32).view(1, 3, 1, 1)
    return pixels.sub_(mean).div_(std)


def preprocess(images: Sequence[Image.Image | np.ndarray], prep: Preprocessing) -> torch.Tensor:
    """A batch of PIL images or uint8 RGB arrays to the model's input tensor."""
    crops = [resize_and_crop(_as_pil(image), prep) for image in images]
    return normalize(np.stack(crops), prep)


def _as_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"arrays must be uint8 HxW or HxWxC, got {array.dtype} {array.shape}")
    return Image.fromarray(array)
