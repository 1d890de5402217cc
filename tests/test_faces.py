"""Offline face detection: one face on the astronaut, none on the cat; which faces get scored."""

import cv2
import numpy as np
import pytest
from skimage import data

from clipforensics.faces.detection import DlibCnnDetector, DlibHogDetector, Face, choose_faces, five_from_68
from clipforensics.faces.detectors import BACKENDS, create_face_detector
from clipforensics.faces.options import FaceOptions


def test_the_hog_backend_finds_exactly_the_astronauts_face():
    [face] = DlibHogDetector().detect(data.astronaut())

    x0, y0, x1, y1 = face.box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200
    assert face.score > 0.5 and face.landmarks.shape == (5, 2) and face.landmarks68.shape == (68, 2)
    left_eye, right_eye, nose, left_mouth, right_mouth = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] < left_mouth[1]
    assert left_mouth[0] < right_mouth[0]


def test_the_hog_backend_finds_no_face_on_the_cat():
    assert DlibHogDetector().detect(data.chelsea()) == []


def test_a_large_frame_is_searched_downscaled_and_boxes_come_back_in_frame_pixels():
    portrait = cv2.resize(data.astronaut()[:300, 100:400], (660, 660), interpolation=cv2.INTER_CUBIC)
    frame = np.full((720, 1280, 3), 90, dtype=np.uint8)
    frame[30:690, 500:1160] = portrait

    [face] = DlibHogDetector(max_side=640).detect(frame)
    [reference] = DlibHogDetector(max_side=None).detect(portrait)

    np.testing.assert_allclose(face.box, reference.box + [500, 30, 500, 30], atol=15)
    np.testing.assert_allclose(face.landmarks, reference.landmarks + [500, 30], atol=4)


@pytest.mark.slow
def test_the_cnn_backend_finds_the_astronauts_face():
    [face] = DlibCnnDetector().detect(data.astronaut())

    assert 150 < face.box[0] < face.box[2] < 300


def test_each_backend_is_built_by_its_name_from_the_shared_options():
    detector = FaceOptions(backend="dlib-cnn", max_side=320).create_detector()

    assert BACKENDS == ("dlib-hog", "dlib-cnn", "retinaface")
    assert isinstance(detector, DlibCnnDetector) and detector.max_side == 320
    assert isinstance(create_face_detector("dlib-hog", max_side=None), DlibHogDetector)
    with pytest.raises(ValueError, match="must be one of"):
        create_face_detector("mtcnn")


def test_five_points_are_eye_centres_nose_tip_and_mouth_corners():
    points = np.arange(136, dtype=np.float32).reshape(68, 2)

    five = five_from_68(points)

    np.testing.assert_allclose(five[0], points[36:42].mean(0))
    np.testing.assert_allclose(five[1], points[42:48].mean(0))
    np.testing.assert_allclose(five[2:], points[[30, 48, 54]])


def _face(x0, y0, x1, y1, score=1.0):
    return Face(np.array([x0, y0, x1, y1], dtype=np.float32), score, np.zeros((5, 2), np.float32))


def test_the_largest_face_is_chosen_by_default_and_all_on_request():
    small, large = _face(0, 0, 50, 50, score=2.0), _face(100, 100, 220, 220, score=0.7)

    assert choose_faces([small, large]) == [large]
    assert choose_faces([small, large], "all") == [small, large]
    assert choose_faces([], "largest") == []


def test_with_a_manipulation_mask_the_face_it_covers_is_chosen():
    manipulated, bystander = _face(0, 0, 50, 50), _face(100, 100, 220, 220)
    mask = np.zeros((300, 300), np.uint8)
    mask[10:40, 10:40] = 255

    assert choose_faces([bystander, manipulated], "mask", mask) == [manipulated]
