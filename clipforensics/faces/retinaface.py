"""InsightFace's RetinaFace/SCRFD detector (``det_10g.onnx``, what GenD used) through onnxruntime.

The model file is never downloaded: the user passes its path. Decoding follows InsightFace's: the
frame is letterboxed into a square input (mean 127.5, std 128, BGR), each stride's anchor centres
(2 anchors a cell) receive distances to the box sides and to the five landmarks, then NMS.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ClipForensicsError
from .detection import Face

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2


class RetinaFaceDetector:
    def __init__(self, model_path: str | Path, input_size: int = 640, threshold: float = 0.5,
                 nms_threshold: float = 0.4):
        try:
            import onnxruntime
        except ImportError:
            raise ClipForensicsError("the retinaface backend needs onnxruntime: pip install onnxruntime") from None
        path = Path(model_path)
        if not path.is_file():
            raise ClipForensicsError(f"{path}: no such model file (the retinaface backend needs det_10g.onnx)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped failures
            raise ClipForensicsError(f"{path}: not a loadable ONNX model ({error})") from None
        outputs = self.session.get_outputs()
        if len(outputs) != 9:
            raise ClipForensicsError(
                f"{path}: {len(outputs)} outputs; a RetinaFace/SCRFD model with landmarks has 9 (det_10g.onnx)"
            )
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in outputs]
        self.input_size = input_size
        self.threshold = threshold
        self.nms_threshold = nms_threshold

    def detect(self, frame: np.ndarray) -> list[Face]:
        canvas, scale = letterbox(frame, self.input_size)
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, (self.input_size, self.input_size),
                                     (127.5, 127.5, 127.5), swapRB=True)
        outputs = self.session.run(self.output_names, {self.input_name: blob})
        boxes, scores, landmarks = decode(outputs, self.input_size, self.threshold)
        keep = nms(boxes, scores, self.nms_threshold)
        return [Face(boxes[i] / scale, float(scores[i]), (landmarks[i] / scale).astype(np.float32)) for i in keep]


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The frame resized to fit ``size`` x ``size``, top-left aligned on black, and the scale
    that maps frame pixels to input pixels (InsightFace's rounding)."""
    height, width = frame.shape[:2]
    if height > width:
        new_height, new_width = size, int(size * width / height)
    else:
        new_width, new_height = size, int(size * height / width)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:new_height, :new_width] = cv2.resize(frame, (new_width, new_height))
    return canvas, new_height / height


def anchor_centres(size: int, stride: int) -> np.ndarray:
    cells = size // stride
    ys, xs = np.mgrid[:cells, :cells]
    centres = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
    return np.repeat(centres, ANCHORS_PER_CELL, axis=0)


def decode(outputs: list[np.ndarray], size: int, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [N, 4], scores [N], landmarks [N, 5, 2] in input pixels, for scores >= ``threshold``.

    ``outputs``: scores, box distances and landmark distances for strides 8, 16 and 32, in that order.
    """
    boxes, scores, landmarks = [], [], []
    for level, stride in enumerate(STRIDES):
        score = outputs[level].reshape(-1)
        distances = outputs[level + 3].reshape(-1, 4) * stride
        offsets = outputs[level + 6].reshape(-1, 5, 2) * stride
        centres = anchor_centres(size, stride)
        chosen = score >= threshold
        centre = centres[chosen]
        boxes.append(np.hstack([centre - distances[chosen, :2], centre + distances[chosen, 2:]]))
        scores.append(score[chosen])
        landmarks.append(centre[:, None, :] + offsets[chosen])
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(landmarks)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best first (InsightFace's +1 pixel areas)."""
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        keep.append(int(best))
        if not len(rest):
            break
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.maximum(0.0, bottom_right - top_left + 1), axis=1)
        overlap = inter / (areas[best] + areas[rest] - inter)
        order = list(rest[overlap <= threshold])
    return keep
