"""Pictures of people made on the spot: scikit-image's public-domain astronaut (or its cameraman, another person)
pasted as heads of chosen sizes, turns and tilts onto other bundled photos, with the true face boxes. Used by the
face tests and by ``bench/faces_wild.py``."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data
from skimage.util import img_as_ubyte

from clipforensics.faces.detection import box_iou


@dataclass(frozen=True)
class Photo:
    """A bundled photo of a person: the rows and columns cut out as a head, and the face's square box in the cut."""

    name: str
    head: tuple[int, int, int, int]
    face_box: tuple[float, float, float, float]


PHOTOS = {
    "astronaut": Photo("astronaut", (0, 300, 80, 365), (99.0, 83.0, 186.0, 170.0)),
    "camera": Photo("camera", (60, 270, 130, 330), (60.0, 60.0, 135.0, 135.0)),
}
"""The astronaut's box is dlib's HOG box on the photo (87 px a side); the cameraman's is MTCNN's, made square."""
BACKGROUNDS = ("coffee", "chelsea", "rocket", "horse", "brick", "grass", "gravel", "coins", "page",
               "hubble_deep_field")


@dataclass(frozen=True)
class Head:
    """One pasted face: ``size`` its box's side in the picture, ``centre`` its box's centre, ``tilt`` an in-plane
    rotation in degrees, ``turn`` a horizontal squeeze standing for a head turned aside (1: frontal; 0.7 is
    about 45°), ``mirrored`` flipped left to right, ``tint`` a per-channel gain."""

    size: float
    centre: tuple[float, float]
    tilt: float = 0.0
    turn: float = 1.0
    mirrored: bool = False
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    photo: str = "astronaut"

    @property
    def box(self) -> np.ndarray:
        """The face's true box in the picture: upright, its width narrowed by the turn."""
        half = np.array([self.size * self.turn, self.size]) / 2
        return np.concatenate([np.array(self.centre) - half, np.array(self.centre) + half])


def _head_picture(photo: Photo) -> tuple[np.ndarray, np.ndarray]:
    """The head cut-out (RGB) and its soft oval mask (1 inside, fading to 0), sized to the face."""
    top, bottom, left, right = photo.head
    head = img_as_ubyte(getattr(data, photo.name)())[top:bottom, left:right]
    head = np.repeat(head[..., None], 3, axis=2) if head.ndim == 2 else head
    box = np.array(photo.face_box)
    side = (box[2] - box[0]) / 87
    mask = np.zeros(head.shape[:2], np.float32)
    centre = (int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2 - 10 * side))
    cv2.ellipse(mask, centre, (int(95 * side), int(125 * side)), 0, 0, 360, 1.0, -1)
    return np.ascontiguousarray(head), cv2.GaussianBlur(mask, (0, 0), 8 * side)


def paste(picture: np.ndarray, head: Head) -> None:
    """Draws ``head`` onto ``picture`` (RGB uint8, in place)."""
    photo = PHOTOS[head.photo]
    face_box = np.array(photo.face_box)
    cut, mask = _head_picture(photo)
    if head.mirrored:
        cut, mask = cut[:, ::-1], mask[:, ::-1]
        box_centre = np.array([cut.shape[1] - (face_box[0] + face_box[2]) / 2, (face_box[1] + face_box[3]) / 2])
    else:
        box_centre = (face_box[:2] + face_box[2:]) / 2
    cut = np.clip(cut * np.array(head.tint, np.float32), 0, 255)
    scale = head.size / (face_box[2] - face_box[0])
    rotation = cv2.getRotationMatrix2D((0.0, 0.0), head.tilt, 1.0)[:, :2]
    linear = rotation @ np.diag([scale * head.turn, scale])
    matrix = np.hstack([linear, (np.array(head.centre) - linear @ box_centre)[:, None]])
    corners = np.array([[0, 0], [cut.shape[1], 0], [0, cut.shape[0]], [cut.shape[1], cut.shape[0]]], np.float64)
    placed = corners @ matrix[:, :2].T + matrix[:, 2]
    x0, y0 = np.maximum(np.floor(placed.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(placed.max(0)).astype(int), [picture.shape[1], picture.shape[0]])
    if x1 <= x0 or y1 <= y0:
        return
    local = matrix.copy()
    local[:, 2] -= [x0, y0]
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(cut, local, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, local, size, flags=cv2.INTER_LINEAR)[..., None]
    region = picture[y0:y1, x0:x1].astype(np.float32)
    picture[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + warped * alpha + 0.5, 0, 255).astype(np.uint8)


def background(name: str, width: int, height: int) -> np.ndarray:
    """A bundled photo stretched to cover ``width`` x ``height`` (RGB)."""
    photo = img_as_ubyte(getattr(data, name)())
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    return cv2.resize(np.ascontiguousarray(photo[..., :3]), (width, height), interpolation=cv2.INTER_LINEAR)


def scene(width: int, height: int, heads: list[Head], backdrop: str = "coffee") -> np.ndarray:
    picture = background(backdrop, width, height)
    for head in heads:
        paste(picture, head)
    return picture


def random_heads(rng: np.random.Generator, width: int, height: int, sizes: list[float], max_tilt: float = 30.0,
                 turns: tuple[float, ...] = (1.0, 0.85, 0.7)) -> list[Head]:
    """Heads of the given face sizes at random places that keep their cut-outs apart, with random tilts up to
    ``max_tilt`` degrees, turns, mirroring and tints."""
    heads: list[Head] = []
    for size in sizes:
        reach = size * 2.0  # the cut-out reaches about this far around the face's centre
        for _ in range(200):
            centre = (float(rng.uniform(reach / 2, width - reach / 2)),
                      float(rng.uniform(reach / 2, height - reach / 2)))
            if all(np.hypot(centre[0] - other.centre[0], centre[1] - other.centre[1]) > (reach + other.size * 2) / 2
                   for other in heads):
                break
        else:
            continue
        heads.append(Head(size, centre, float(rng.uniform(-max_tilt, max_tilt)), float(rng.choice(turns)),
                          bool(rng.integers(2)), tuple(float(g) for g in rng.uniform(0.75, 1.2, 3))))
    return heads


def matched(truth: list[np.ndarray], found: list[np.ndarray], threshold: float = 0.4) -> tuple[list[bool], int]:
    """Which true boxes a found box overlaps with IoU >= ``threshold`` (each found box matches one true box at
    most, best pairs first), and how many found boxes match none."""
    pairs = sorted(((box_iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    hit, used = [False] * len(truth), set()
    for overlap, i, j in pairs:
        if overlap >= threshold and not hit[i] and j not in used:
            hit[i] = True
            used.add(j)
    return hit, len(found) - len(used)
