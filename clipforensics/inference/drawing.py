"""Pictures of results: faces boxed with their p_fake, maps as heatmaps, a video's p_fake over time."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .results import FaceResult, FrameResult

FAKE_COLOUR = (230, 40, 40)
REAL_COLOUR = (40, 200, 60)
OVERLAY_OPACITY = 0.5


def draw_faces(image: np.ndarray, faces: Sequence[FaceResult], threshold: float) -> np.ndarray:
    """A copy of the RGB image with each scored face's box and p_fake (red at or above ``threshold``)."""
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


def overlay(image: np.ndarray, values: np.ndarray, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """The map as a heatmap (jet: blue untouched, red manipulated) over the RGB image, weighted by the map
    itself so untouched regions stay close to the image."""
    heat = cv2.cvtColor(cv2.applyColorMap(levels(values), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = (opacity * np.clip(values, 0.0, 1.0))[..., None]
    return (image * (1 - weight) + heat * weight).round().astype(np.uint8)


def levels(values: np.ndarray) -> np.ndarray:
    """Probabilities as 8-bit grey levels."""
    return (np.clip(values, 0.0, 1.0) * 255).round().astype(np.uint8)


def timeline(frames: Sequence[FrameResult], threshold: float, title: str) -> np.ndarray:
    """A chart of each sampled frame's p_fake against its time (or index), as an RGB image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3), layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ax = figure.subplots()
    timed = all(frame.timestamp is not None for frame in frames)
    xs = [frame.timestamp if timed else frame.index for frame in frames]
    scored = [(x, frame.p_fake) for x, frame in zip(xs, frames) if frame.p_fake is not None]
    if scored:
        ax.plot(*zip(*scored), marker="o", markersize=3)
    faceless = [x for x, frame in zip(xs, frames) if frame.p_fake is None]
    if faceless:
        ax.plot(faceless, [0.0] * len(faceless), "x", color="grey", label="no face")
        ax.legend(fontsize="small", loc="upper right")
    ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)" if timed else "frame")
    ax.set_ylabel("p_fake")
    ax.set_title(title, fontsize="small")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
