"""MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional Networks",
2016) in PyTorch: three small CNNs in cascade. P-Net slides a 12 px window over an image pyramid, R-Net (24 px)
and O-Net (48 px) rescore and refine its proposals, and O-Net places the five points. It finds faces down to a
chosen size at a cost that grows with the frame's area at that size only, so a frame is searched for its
small faces without searching it at full resolution.

The weights are the authors' released models as converted by the ``mtcnn`` package (MIT licence; the arrays
ship inside its wheel). They are read from the installed package's files, never by importing it (its code
needs TensorFlow): Keras kernels [kh, kw, in, out] become PyTorch's [out, in, kh, kw], and the dense layers
flatten the feature map in Keras' permuted (width-major) order.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ClipForensicsError

WINDOW = 12
"""P-Net's window: a face of ``min_face`` px is searched at scale ``WINDOW / min_face``."""
PYRAMID_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.8)
"""Face probability each net must give a window to pass it on (the authors' values)."""


def weights_folder() -> Path:
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ClipForensicsError("the mtcnn face detector needs the package mtcnn (pip install mtcnn; its "
                                 "weights are read from it, TensorFlow is not needed)")
    return Path(spec.submodule_search_locations[0]) / "assets" / "weights"


def _conv(weight: np.ndarray, bias: np.ndarray) -> nn.Conv2d:
    conv = nn.Conv2d(weight.shape[2], weight.shape[3], weight.shape[:2])
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(weight.transpose(3, 2, 0, 1)))
    conv.bias.data = torch.from_numpy(bias)
    return conv


def _dense(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    dense = nn.Linear(*weight.shape)
    dense.weight.data = torch.from_numpy(np.ascontiguousarray(weight.T))
    dense.bias.data = torch.from_numpy(bias)
    return dense


def _prelu(alpha: np.ndarray) -> nn.PReLU:
    prelu = nn.PReLU(alpha.size)
    prelu.weight.data = torch.from_numpy(alpha.reshape(-1).copy())
    return prelu


def _stack(arrays: list[np.ndarray], pools: list[nn.Module | None]) -> tuple[nn.Sequential, list[np.ndarray]]:
    """One conv + PReLU (kernel, bias, alpha from the front of ``arrays``) for each of ``pools``, each followed by
    its pool where there is one; returns the stack and the arrays left."""
    layers: list[nn.Module] = []
    for pool in pools:
        kernel, bias, alpha, *arrays = arrays
        layers += [_conv(kernel, bias), _prelu(alpha)] + ([pool] if pool is not None else [])
    return nn.Sequential(*layers), arrays


class MaxPool(nn.Module):
    """Max pooling at stride 2 as Keras pools: ``same`` pads after only (PyTorch's ceil mode), ``valid`` drops the
    rest. Taken as the maximum of strided views, row then column: the same numbers as ``F.max_pool2d`` at a tenth of
    its time on one CPU thread for these small maps."""

    def __init__(self, size: int, same: bool):
        super().__init__()
        self.size, self.same = size, same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.size
        height, width = x.shape[-2:]
        rows, columns = ((-(-(side - k) // 2) if self.same else (side - k) // 2) + 1 for side in (height, width))
        pad = [max((columns - 1) * 2 + k - width, 0), max((rows - 1) * 2 + k - height, 0)]
        if any(pad):
            x = F.pad(x, (0, pad[0], 0, pad[1]), value=float("-inf"))
        reach = (rows - 1) * 2 + 1
        pooled = x[..., 0:reach:2, :]
        for i in range(1, k):
            pooled = torch.maximum(pooled, x[..., i : i + reach : 2, :])
        reach = (columns - 1) * 2 + 1
        out = pooled[..., 0:reach:2]
        for j in range(1, k):
            out = torch.maximum(out, pooled[..., j : j + reach : 2])
        return out


class PNet(nn.Module):
    def __init__(self, arrays: list[np.ndarray]):
        super().__init__()
        self.body, (box_w, box_b, score_w, score_b) = _stack(arrays, [MaxPool(2, same=True), None, None])
        self.box, self.score = _conv(box_w, box_b), _conv(score_w, score_b)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return self.box(features), torch.softmax(self.score(features), dim=1)[:, 1]


class RefineNet(nn.Module):
    """R-Net and O-Net: convolutions, a dense layer, then box offsets, (O-Net) five points, and a score."""

    def __init__(self, arrays: list[np.ndarray], pools: list[nn.Module | None]):
        super().__init__()
        self.body, arrays = _stack(arrays, pools)
        dense_w, dense_b, alpha, *heads = arrays
        self.dense, self.prelu = _dense(dense_w, dense_b), _prelu(alpha)
        self.heads = nn.ModuleList(_dense(heads[i], heads[i + 1]) for i in range(0, len(heads), 2))

    def forward(self, patches: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(patches).permute(0, 3, 2, 1).flatten(1)
        hidden = self.prelu(self.dense(features))
        *regressions, score = (head(hidden) for head in self.heads)
        return [*regressions, torch.softmax(score, dim=1)[:, 1]]


@cache
def networks() -> tuple[PNet, RefineNet, RefineNet]:
    """The three nets, loaded once per process (read-only after)."""
    import joblib

    folder = weights_folder()
    arrays = {name: joblib.load(folder / f"{name}.lz4") for name in ("pnet", "rnet", "onet")}
    nets = (PNet(arrays["pnet"]),
            RefineNet(arrays["rnet"], [MaxPool(3, same=True), MaxPool(3, same=False), None]),
            RefineNet(arrays["onet"], [MaxPool(3, same=True), MaxPool(3, same=False), MaxPool(2, same=True), None]))
    for net in nets:
        net.eval().requires_grad_(False)
    return nets


def _normalised(images: np.ndarray) -> torch.Tensor:
    """RGB uint8 [..., H, W, 3] as the nets read it: [..., 3, H, W], (x - 127.5) / 128."""
    return (torch.from_numpy(np.ascontiguousarray(images)).movedim(-1, -3).float() - 127.5) * 0.0078125


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first; overlap over the union, or over the smaller box."""
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:4], boxes[rest, 2:4])
        inter = np.prod(np.maximum(0.0, bottom_right - top_left + 1), axis=1)
        overlap = inter / (np.minimum(areas[best], areas[rest]) if by_min else areas[best] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=int)


def _square(boxes: np.ndarray) -> np.ndarray:
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    return np.hstack([centre - side[:, None] / 2, centre + side[:, None] / 2])


def _refined(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    sides = np.tile(boxes[:, 2:4] - boxes[:, :2] + 1, 2)
    return boxes + offsets * sides


class Halvings:
    """An image and its halvings (each half the last's side, made as needed): a patch of ``size`` px is cut from the
    smallest one where its box still has twice ``size`` on a side, so that cutting a few hundred proposals costs
    little more than the patches themselves, with the same area averaging."""

    def __init__(self, image: np.ndarray):
        self.levels = [image]

    def level(self, side: float, size: int) -> tuple[np.ndarray, float]:
        """The image to cut a box of ``side`` px from, and its scale."""
        return self.at_least(2 * size / max(side, 1))

    def at_least(self, scale: float) -> tuple[np.ndarray, float]:
        """The smallest halving still at ``scale`` or larger, and its scale."""
        depth = max(int(np.log2(1 / scale)), 0) if scale < 1 else 0
        while len(self.levels) <= depth and min(self.levels[-1].shape[:2]) >= 2 * WINDOW:
            last = self.levels[-1]
            self.levels.append(cv2.resize(last, ((last.shape[1] + 1) // 2, (last.shape[0] + 1) // 2),
                                          interpolation=cv2.INTER_AREA))
        depth = min(depth, len(self.levels) - 1)
        return self.levels[depth], self.levels[depth].shape[1] / self.levels[0].shape[1]

    def patches(self, boxes: np.ndarray, size: int) -> torch.Tensor:
        """Each box (frame pixels) cut out (zero outside the image) and resized to ``size``: [N, 3, size, size],
        normalised."""
        patches = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
        for i, box in enumerate(boxes):
            image, scale = self.level(float(box[2] - box[0]), size)
            height, width = image.shape[:2]
            x0, y0, x1, y1 = np.round(box * scale).astype(int)
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
            if x1 <= x0 or y1 <= y0 or cx1 < cx0 or cy1 < cy0:
                continue
            cut = image[cy0 : cy1 + 1, cx0 : cx1 + 1]
            if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):  # reaches out of the image: zeros there
                canvas = np.zeros((y1 - y0 + 1, x1 - x0 + 1, 3), dtype=np.uint8)
                canvas[cy0 - y0 : cy1 - y0 + 1, cx0 - x0 : cx1 - x0 + 1] = cut
                cut = canvas
            patches[i] = cv2.resize(cut, (size, size), interpolation=cv2.INTER_AREA)
        return _normalised(patches)


def pyramid(height: int, width: int, min_face: float) -> list[float]:
    """The scales P-Net searches: from ``WINDOW / min_face`` down until the frame's short side is one window."""
    scales, scale = [], WINDOW / min_face
    while min(height, width) * scale >= WINDOW:
        scales.append(scale)
        scale *= PYRAMID_FACTOR
    return scales


def propose(halvings: Halvings, min_face: float) -> tuple[np.ndarray, np.ndarray]:
    """P-Net's windows (boxes in frame pixels, squared after refinement) and scores."""
    pnet = networks()[0]
    height, width = halvings.levels[0].shape[:2]
    found_boxes, found_scores = [], []
    scales = pyramid(height, width, min_face)
    scaled = halvings.at_least(scales[0])[0] if scales else None
    for scale in scales:
        size = (max(int(np.ceil(width * scale)), WINDOW), max(int(np.ceil(height * scale)), WINDOW))
        scaled = cv2.resize(scaled, size, interpolation=cv2.INTER_AREA)  # each level from the last: cheaper
        offsets, scores = pnet(_normalised(scaled)[None])
        scores = scores[0].numpy()
        ys, xs = np.nonzero(scores >= THRESHOLDS[0])
        if not len(ys):
            continue
        corners = np.stack([xs, ys], axis=1) * 2.0
        boxes = np.hstack([(corners + 1) / scale, (corners + WINDOW) / scale])
        boxes = _refined(boxes, offsets[0][:, ys, xs].numpy().T)
        kept = nms(boxes, scores[ys, xs], 0.5)
        found_boxes.append(boxes[kept])
        found_scores.append(scores[ys, xs][kept])
    if not found_boxes:
        return np.zeros((0, 4)), np.zeros(0)
    boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
    kept = nms(boxes, scores, 0.7)
    return _square(boxes[kept]), scores[kept]


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread in this thread while it lasts. The cascade's convolutions are tiny: a team of threads
    costs more to gather than it saves, and while the model (or anything else) keeps the other cores busy, a
    search on two threads was measured 4-8x slower than on one. Torch's thread count is per calling thread, so
    the model's own threads keep theirs; the count is restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def detect(image: np.ndarray, min_face: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces of at least about ``min_face`` px in an RGB uint8 image: boxes [N, 4] (x0, y0, x1, y1), scores [N]
    and five points [N, 5, 2] (left eye, right eye, nose tip, left and right mouth corners, image left/right),
    most confident first."""
    with one_thread(), torch.inference_mode():
        return _cascade(image, min_face)


def _cascade(image: np.ndarray, min_face: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, rnet, onet = networks()
    halvings = Halvings(image)
    boxes, _ = propose(halvings, min_face)
    if len(boxes):
        offsets, scores = (output.numpy() for output in rnet(halvings.patches(boxes, 24)))
        chosen = scores >= THRESHOLDS[1]
        boxes, scores = _refined(boxes[chosen], offsets[chosen]), scores[chosen]
        kept = nms(boxes, scores, 0.7)
        boxes = _square(boxes[kept])
    if not len(boxes):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    offsets, points, scores = (output.numpy() for output in onet(halvings.patches(boxes, 48)))
    chosen = scores >= THRESHOLDS[2]
    boxes, offsets, points, scores = boxes[chosen], offsets[chosen], points[chosen], scores[chosen]
    sides = boxes[:, 2:4] - boxes[:, :2] + 1
    points = np.stack([points[:, :5] * sides[:, :1], points[:, 5:] * sides[:, 1:]], axis=-1) + boxes[:, None, :2] - 1
    boxes = _refined(boxes, offsets)
    kept = nms(boxes, scores, 0.7, by_min=True)
    return boxes[kept].astype(np.float32), scores[kept].astype(np.float32), points[kept].astype(np.float32)
