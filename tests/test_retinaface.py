"""The RetinaFace/SCRFD backend decodes det_10g-shaped outputs into boxes and five landmarks.

The ONNX model here is written by the test with the same nine outputs as det_10g.onnx (see ``det10g``), holding
one known face.
"""

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from clipforensics.errors import ClipForensicsError  # noqa: E402
from clipforensics.faces.detectors import create_face_detector  # noqa: E402
from clipforensics.faces.retinaface import nms  # noqa: E402

from .det10g import BOX, CENTRE, POINTS, write_det_10g_like  # noqa: E402


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return write_det_10g_like(tmp_path_factory.mktemp("onnx") / "det_10g_like.onnx")


def test_one_face_is_decoded_in_frame_pixels_with_its_five_landmarks(model_path):
    frame = np.zeros((720, 1280, 3), np.uint8)  # letterboxed at scale 0.5

    [face] = create_face_detector("retinaface", model_path).detect(frame)

    np.testing.assert_allclose(face.box, np.r_[CENTRE - BOX[:2], CENTRE + BOX[2:]] * 2, atol=1e-3)
    np.testing.assert_allclose(face.landmarks, (CENTRE + POINTS) * 2, atol=1e-3)
    assert face.score == pytest.approx(0.9)


def test_the_backend_needs_the_model_file_and_says_so(tmp_path):
    with pytest.raises(ValueError, match="det_10g.onnx"):
        create_face_detector("retinaface")
    with pytest.raises(ClipForensicsError, match="no such model file"):
        create_face_detector("retinaface", tmp_path / "missing.onnx")


def test_nms_keeps_the_best_of_overlapping_boxes_and_separate_ones():
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [300, 300, 400, 400]], dtype=np.float32)

    assert nms(boxes, np.array([0.7, 0.9, 0.8]), 0.4) == [1, 2]
