"""The RetinaFace/SCRFD backend decodes det_10g-shaped outputs into boxes and five landmarks.

The ONNX model here is written by the test with the same nine outputs as det_10g.onnx (scores,
box and landmark distances for strides 8, 16, 32; two anchors a cell), holding one known face.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from clipforensics.errors import ClipForensicsError  # noqa: E402
from clipforensics.faces.detectors import create_face_detector  # noqa: E402
from clipforensics.faces.retinaface import nms  # noqa: E402

SIZE = 640
CENTRE = np.array([320.0, 240.0])  # input pixels: the anchor of cell (20, 15) at stride 16
BOX = np.array([60.0, 80.0, 60.0, 70.0])  # distances to left, top, right, bottom
POINTS = np.array([[-25, -20], [25, -20], [0, 5], [-20, 30], [20, 30]], dtype=np.float32)


def _outputs() -> list[np.ndarray]:
    scores, boxes, points = [], [], []
    for stride in (8, 16, 32):
        anchors = (SIZE // stride) ** 2 * 2
        score = np.zeros((anchors, 1), np.float32)
        box = np.ones((anchors, 4), np.float32)
        kps = np.zeros((anchors, 10), np.float32)
        if stride == 16:
            anchor = (15 * 40 + 20) * 2
            score[anchor], score[anchor + 1] = 0.9, 0.8  # the second, overlapping, is suppressed
            box[anchor] = BOX / stride
            box[anchor + 1] = (BOX + 4) / stride
            kps[anchor] = kps[anchor + 1] = POINTS.reshape(-1) / stride
        scores.append(score)
        boxes.append(box)
        points.append(kps)
    return scores + boxes + points


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    values = _outputs()
    names = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in (8, 16, 32)]
    nodes = [helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_value", TensorProto.FLOAT,
                                                                              value.shape, value.reshape(-1)))
             for name, value in zip(names, values)]
    graph = helper.make_graph(
        nodes, "det_10g_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(v.shape)) for name, v in zip(names, values)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path = tmp_path_factory.mktemp("onnx") / "det_10g_like.onnx"
    onnx.save(model, path)
    return path


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
