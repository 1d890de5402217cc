"""Five-point similarity alignment with the two published recipes.

Both map the five points (left eye, right eye, nose tip, left and right mouth corners) onto a
template, enlarged by ``scale`` around its centre, and warp the frame with the fitted similarity.
The 2x3 matrix is returned so boxes, masks and heatmaps map between frame and crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# ArcFace's 96x112 template, shifted by 8 px to 112x112 as DeepfakeBench does.
ARCFACE_112 = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]],
    dtype=np.float32,
) + np.array([8.0, 0.0], dtype=np.float32)
# GenD's template, in fractions of the crop's side.
GEND_UNIT = np.array([[0.34, 0.46], [0.66, 0.46], [0.5, 0.64], [0.37, 0.82], [0.63, 0.82]], dtype=np.float32)

RECIPES = ("deepfakebench", "gend")


@dataclass(frozen=True)
class AlignedFace:
    crop: np.ndarray
    """The aligned face, uint8 [size, size, 3]."""
    matrix: np.ndarray
    """2x3 similarity mapping frame coordinates to crop coordinates."""

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        return (points - self.matrix[:, 2]) @ np.linalg.inv(self.matrix[:, :2]).T


def template(recipe: str, size: int, scale: float = 1.3) -> np.ndarray:
    """The recipe's five destination points in a ``size`` x ``size`` crop, with margin ``scale``."""
    if recipe == "deepfakebench":
        points = ARCFACE_112 * (size / 112.0)
    elif recipe == "gend":
        points = GEND_UNIT * size
    else:
        raise ValueError(f"alignment recipe must be one of {RECIPES}, not {recipe!r}")
    margin = size * (scale - 1) / 2.0
    return ((points + margin) * (size / (size + 2 * margin))).astype(np.float32)


def native_size(landmarks: np.ndarray, scale: float = 1.3) -> int:
    """GenD's crop side when none is given: the face's own scale against the unit template."""
    upper = np.triu_indices(5, k=1)
    face = np.linalg.norm(landmarks[:, None] - landmarks[None], axis=-1)[upper]
    unit = np.linalg.norm(GEND_UNIT[:, None] - GEND_UNIT[None], axis=-1)[upper]
    return int(np.round(np.mean(face / unit) * scale))


def similarity_matrix(recipe: str, landmarks: np.ndarray, size: int, scale: float = 1.3) -> np.ndarray:
    """The 2x3 matrix each recipe fits: least squares (Umeyama) for DeepfakeBench, LMEDS for GenD."""
    source = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    destination = template(recipe, size, scale)
    if recipe == "deepfakebench":
        from skimage.transform import SimilarityTransform

        return SimilarityTransform.from_estimate(source, destination).params[:2].copy()
    matrix, _ = cv2.estimateAffinePartial2D(source, destination, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("the five landmarks are degenerate: no similarity fits them")
    return matrix


def align_face(
    frame: np.ndarray, landmarks: np.ndarray, recipe: str = "deepfakebench", size: int | None = 256,
    scale: float = 1.3,
) -> AlignedFace:
    """Warps ``frame`` (RGB) so the five landmarks land on the recipe's template.

    ``size=None`` keeps the face's native resolution (GenD only).
    """
    if size is None:
        if recipe != "gend":
            raise ValueError("a native-size crop (size=None) is GenD's option; give a size for deepfakebench")
        size = native_size(np.asarray(landmarks, dtype=np.float32), scale)
    matrix = similarity_matrix(recipe, landmarks, size, scale)
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return AlignedFace(crop=crop, matrix=matrix)


def warp_mask(mask: np.ndarray, face: AlignedFace) -> np.ndarray:
    """A manipulation mask of the frame, warped onto the crop (nearest neighbour keeps it binary)."""
    size = face.crop.shape[1], face.crop.shape[0]
    return cv2.warpAffine(mask, face.matrix, size, flags=cv2.INTER_NEAREST)
