"""Offline face detection: one face on the astronaut, none on the cat; the default search finds ordinary faces in
large frames; which faces get scored."""

import cv2
import numpy as np
import pytest
from skimage import data

from clipforensics.errors import OptionError
from clipforensics.faces.detection import DlibCnnDetector, DlibHogDetector, Face, choose_faces, five_from_68
from clipforensics.faces.detectors import BACKENDS, create_face_detector
from clipforensics.faces.mtcnn import MtcnnDetector
from clipforensics.faces.options import FaceOptions
from clipforensics.faces.search import VideoFaceSearch
from tests.scenes import Head, matched, scene


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

    assert BACKENDS == ("mtcnn", "dlib-hog", "dlib-cnn", "retinaface")
    assert isinstance(detector, DlibCnnDetector) and detector.max_side == 320
    assert isinstance(create_face_detector("dlib-hog"), DlibHogDetector)
    assert isinstance(FaceOptions().create_detector(), MtcnnDetector)
    with pytest.raises(ValueError, match="must be one of"):
        create_face_detector("yunet")


def test_the_default_detector_finds_the_astronauts_face_with_five_points_where_dlib_puts_them():
    [reference] = DlibHogDetector().detect(data.astronaut())

    [face] = FaceOptions().create_detector().detect(data.astronaut())

    assert face.score > 0.9 and face.landmarks68 is None
    assert matched([reference.box], [face.box], threshold=0.6)[0] == [True]
    np.testing.assert_allclose(face.landmarks, reference.landmarks, atol=4)


def test_asked_for_68_points_a_five_point_detector_gets_dlibs_placed_from_its_five():
    [reference] = DlibHogDetector().detect(data.astronaut())

    [face] = FaceOptions().create_detector(landmarks68=True).detect(data.astronaut())

    assert face.landmarks68.shape == (68, 2)
    np.testing.assert_allclose(face.landmarks68, reference.landmarks68, atol=3)


def test_the_default_detector_finds_no_face_on_the_cat():
    assert FaceOptions().create_detector().detect(data.chelsea()) == []


GROUP_PHOTO = [Head(100, (500, 500), tilt=-20), Head(150, (1200, 700), turn=0.7), Head(220, (2100, 600), tilt=25,
               mirrored=True), Head(300, (800, 1400), tint=(1.1, 0.9, 0.8)), Head(400, (2200, 1450))]


def test_every_face_of_a_3000x2000_group_photo_is_found_at_default_settings():
    photo = scene(3000, 2000, GROUP_PHOTO, "rocket")

    found = FaceOptions().create_detector().detect(photo)

    hit, false_boxes = matched([head.box for head in GROUP_PHOTO], [face.box for face in found])
    assert all(hit) and false_boxes == 0


def test_the_old_default_search_missed_them_which_is_why_it_is_not_the_default():
    photo = scene(3000, 2000, GROUP_PHOTO, "rocket")

    found = DlibHogDetector(max_side=640).detect(photo)

    assert sum(matched([head.box for head in GROUP_PHOTO], [face.box for face in found])[0]) < 3


def test_the_smallest_face_searched_for_is_64_px_or_4_percent_of_the_short_side():
    assert MtcnnDetector().min_face_in(1080, 1920) == 64
    assert MtcnnDetector().min_face_in(2160, 3840) == pytest.approx(86.4)
    assert MtcnnDetector(min_face=30).min_face_in(1080, 1920) == 30
    assert MtcnnDetector(max_side=960).min_face_in(1080, 1920) == 128  # 64 px at half size


def test_a_smallest_face_size_is_refused_for_a_detector_that_searches_one_fixed_size():
    with pytest.raises(OptionError, match="--face-max-side"):
        FaceOptions(backend="dlib-hog", min_face=30)


def test_search_sizes_that_would_enlarge_or_shred_a_frame_are_refused_naming_the_option():
    with pytest.raises(OptionError, match="0 \\(automatic\\) or at least 20 px, not 5") as small:
        FaceOptions(min_face=5)
    with pytest.raises(OptionError, match="0 \\(full size\\) or at least 64 px, not 10") as tiny:
        FaceOptions(max_side=10)

    assert (small.value.option, tiny.value.option) == ("face_min_size", "face_max_side")


def test_a_miss_says_how_the_frames_were_searched_and_what_would_search_further():
    said = FaceOptions(max_side=960).searched(1080, 1920)

    assert said.startswith("searched 1920x1080 scaled to 960x540 with mtcnn for faces of 128 px and more")
    assert "--face-max-side 0 searches at full size" in said and "--face-min-size 32" in said
    assert "--face-detector mtcnn" in FaceOptions(backend="dlib-hog").searched(720, 1280)
    assert FaceOptions(min_face=20).searched(720, 1280) == \
        "searched 1280x720 at full size with mtcnn for faces of 20 px and more"


def test_through_a_video_faces_are_followed_between_full_searches_and_found_again_when_lost():
    heads = [Head(120, (400 + 30 * step, 400), tilt=step) for step in range(6)]
    frames = [scene(1280, 720, [head], "coffee") for head in heads]
    calls = []

    class Counting(MtcnnDetector):
        def detect(self, frame):
            calls.append(frame.shape[:2])
            return super().detect(frame)

    search = VideoFaceSearch(Counting(), full_every=4)
    found = [search.detect(frame) for frame in frames]

    assert all(matched([head.box], [face.box for face in faces]) == ([True], 0) for head, faces in zip(heads, found))
    assert [shape == (720, 1280) for shape in calls] == [True, False, False, False, True, False]
    gone = scene(1280, 720, [], "coffee")
    assert search.detect(gone) == [] and calls[-1] == (720, 1280)  # the look around lost it: a full search


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
