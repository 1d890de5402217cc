"""A det_10g-like ONNX model written on the spot: the nine outputs of det_10g.onnx (scores, box and landmark
distances for strides 8, 16, 32; two anchors a cell), constants holding one known face whatever the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def write_det_10g_like(path: Path) -> Path:
    """The model, saved at ``path`` (needs the onnx package)."""
    import onnx
    from onnx import TensorProto, helper

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
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path
