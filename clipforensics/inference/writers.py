"""Files written beside the verdicts: aligned crops, and inputs drawn with boxes and scores."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .prepare import Prepared
from .results import Result

FAKE_COLOUR = (230, 40, 40)
REAL_COLOUR = (40, 200, 60)
VIDEO_FPS = 4


def save_crops(prepared: Prepared, folder: Path, stem: Path) -> None:
    """``folder/<stem>/<frame>_<face>.png`` for every aligned face."""
    target = folder / stem
    target.mkdir(parents=True, exist_ok=True)
    for frame in prepared.frames:
        for number, face in enumerate(frame.faces):
            Image.fromarray(face.crop).save(target / f"{frame.index:06d}_{number}.png")


def annotate(prepared: Prepared, result: Result, folder: Path, stem: Path, threshold: float) -> Path:
    """The image (``<stem>.png``) or the sampled frames of a video (``<stem>.mp4``) with each face's
    box and p_fake drawn; returns the file written."""
    drawn = [_draw(frame.image, scored.faces, threshold)
             for frame, scored in zip(prepared.frames, result.frames) if frame.image is not None]
    target = folder / stem.with_suffix(".mp4" if prepared.kind == "video" else ".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    if prepared.kind == "video":
        write_video(drawn, target, VIDEO_FPS)
    else:
        Image.fromarray(drawn[0]).save(target)
    return target


def _draw(image: np.ndarray, faces, threshold: float) -> np.ndarray:
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(2, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        if face.box is None or face.p_fake is None:
            continue
        colour = FAKE_COLOUR if face.p_fake >= threshold else REAL_COLOUR
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        cv2.putText(canvas, f"p_fake {face.p_fake:.2f}", (x0, max(y0 - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX,
                    thickness / 3, colour, thickness)
    return canvas


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """RGB frames to an H.264 MP4 (sides cropped to even sizes, as yuv420p needs)."""
    import av

    height, width = (side - side % 2 for side in frames[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
