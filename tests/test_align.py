"""Both alignment recipes follow their published formulas exactly."""

import numpy as np
import pytest

from clipforensics.faces.align import ARCFACE_112, GEND_UNIT, align_face, native_size, similarity_matrix, template


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _inverse(matrix: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, -linear @ matrix[:, 2:]])


def test_deepfakebench_template_is_arcface_shifted_scaled_and_margined():
    points = template("deepfakebench", 256, scale=1.3)

    # left eye: ArcFace (30.2946 + 8, 51.6963) at 112 -> 256, plus a 0.15 margin each side, squeezed back to 256
    expected_x = (38.2946 * 256 / 112 + 256 * 0.15) * 256 / (256 * 1.3)
    expected_y = (51.6963 * 256 / 112 + 256 * 0.15) * 256 / (256 * 1.3)
    assert points[0] == pytest.approx([expected_x, expected_y], abs=1e-4)
    np.testing.assert_allclose(points, ((ARCFACE_112 * 256 / 112) + 38.4) / 1.3, atol=1e-4)


def test_gend_template_is_its_unit_points_scaled_and_margined():
    points = template("gend", 224, scale=1.3)

    np.testing.assert_allclose(points, (GEND_UNIT * 224 + 224 * 0.15) / 1.3, atol=1e-4)
    assert points[2] == pytest.approx([112.0, (0.64 * 224 + 33.6) / 1.3], abs=1e-4)


@pytest.mark.parametrize("recipe", ["deepfakebench", "gend"])
@pytest.mark.parametrize(("scale", "angle", "tx", "ty"), [(1.0, 0.0, 0.0, 0.0), (0.6, 0.3, -40.0, 25.0),
                                                          (2.2, -0.5, 120.0, -80.0)])
def test_landmarks_that_are_a_similarity_of_the_template_give_back_that_exact_matrix(recipe, scale, angle, tx, ty):
    truth = _similarity(scale, angle, tx, ty)
    landmarks = _apply(_inverse(truth), template(recipe, 256).astype(np.float64))

    matrix = similarity_matrix(recipe, landmarks, 256)

    np.testing.assert_allclose(matrix, truth, atol=1e-3)


def test_deepfakebench_fits_noisy_landmarks_by_least_squares():
    rng = np.random.default_rng(0)
    landmarks = template("deepfakebench", 256) * 0.7 + 30 + rng.normal(0, 2, (5, 2))
    destination = template("deepfakebench", 256).astype(np.float64)

    matrix = similarity_matrix("deepfakebench", landmarks, 256)

    # Umeyama's closed form, written out: the least-squares similarity from landmarks to template
    mu_s, mu_d = landmarks.mean(0), destination.mean(0)
    s, d = landmarks - mu_s, destination - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / 5)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / (s**2).sum(1).mean()
    expected = np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])
    np.testing.assert_allclose(matrix, expected, atol=1e-4)


def test_the_crop_and_its_matrix_map_points_both_ways():
    ys, xs = np.mgrid[0:480, 0:640]
    frame = np.stack([xs * 255 // 639, ys * 255 // 479, np.full_like(xs, 128)], axis=-1).astype(np.uint8)
    landmarks = np.array([[300, 200], [360, 202], [330, 240], [305, 270], [355, 271]], dtype=np.float32)

    face = align_face(frame, landmarks, "gend", 256)

    assert face.crop.shape == (256, 256, 3)
    np.testing.assert_allclose(face.to_frame(face.to_crop(landmarks)), landmarks, atol=1e-3)
    x, y = np.round(face.to_crop(np.array([[320.0, 220.0]])))[0].astype(int)
    np.testing.assert_allclose(face.crop[y, x], frame[220, 320], atol=3)


def test_gend_native_size_follows_the_face():
    landmarks = GEND_UNIT * 100 + 50

    assert native_size(landmarks, scale=1.3) == 130
    assert align_face(np.zeros((300, 300, 3), np.uint8), landmarks, "gend", size=None).crop.shape == (130, 130, 3)


def test_native_size_is_refused_for_the_deepfakebench_recipe():
    with pytest.raises(ValueError, match="GenD"):
        align_face(np.zeros((64, 64, 3), np.uint8), GEND_UNIT * 40, "deepfakebench", size=None)
