"""Pictures of results: faces boxed with their p_fake, maps as heatmaps, a video's p_fake over time.

The pictures read a result's fields (``ScoredFace``, ``ScoredFrame``) without importing ``results``, whose
``Result.plot`` draws with them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from ..colours import FAKE, REAL, UNDECIDED, for_matplotlib, of_person

OVERLAY_OPACITY = 0.5


class ScoredFace(Protocol):
    """What a face's box is drawn from (``results.FaceResult``)."""

    box: list[float] | None
    p_fake: float | None
    person: int | None


class ScoredFrame(Protocol):
    """What a frame's point on a timeline is drawn from (``results.FrameResult``)."""

    index: int
    timestamp: float | None
    faces: Sequence[ScoredFace]

    @property
    def p_fake(self) -> float | None: ...


def draw_faces(image: np.ndarray, faces: Sequence[ScoredFace], threshold: float, note: str = "") -> np.ndarray:
    """A copy of the RGB image with each scored face's box (in its person's colour, its id in the label) and p_fake
    (the label red at or above ``threshold``), the label on a filled band above the box (inside it, at the top,
    where there is no room above). A face without
    a box (the image was the crop) gets its p_fake in the top-left corner; an image with no scored face gets
    ``note`` there instead (why there is none), in grey."""
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(2, round(max(canvas.shape[:2]) / 400))
    scored = [face for face in faces if face.p_fake is not None]
    for face in scored:
        colour = FAKE if face.p_fake >= threshold else REAL
        text = f"p_fake {face.p_fake:.2f}"
        if face.box is None:
            _label(canvas, text, (0, 0), colour, thickness)
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        if face.person is not None:
            text = f"#{face.person} {text}"
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour if face.person is None else of_person(face.person),
                      thickness)
        _label(canvas, text, (x0, y0), colour, thickness)
    if not scored and note:
        _label(canvas, note, (0, 0), UNDECIDED, thickness)
    return canvas


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
           thickness: int) -> None:
    """White text on a band of ``colour`` whose bottom edge sits on the box's top edge at ``corner`` (x, y), or
    whose top edge does when the band would leave the image."""
    scale, weight = thickness / 3, max(1, thickness // 2)
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
    pad = max(2, thickness)
    band = height + baseline + 2 * pad
    x, y = max(0, corner[0]), corner[1]
    top = y - band if y - band >= 0 else max(0, y)
    cv2.rectangle(canvas, (x, top), (x + width + 2 * pad, top + band), colour, cv2.FILLED)
    cv2.putText(canvas, text, (x + pad, top + pad + height), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                weight, cv2.LINE_AA)


def overlay(image: np.ndarray, values: np.ndarray, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """The map as a heatmap (jet: blue untouched, red manipulated) over the RGB image, weighted by the map
    itself so untouched regions stay close to the image, with the colour scale (0 to 1) in a corner."""
    heat = _jet(levels(values))
    weight = (opacity * np.clip(values, 0.0, 1.0))[..., None]
    return _colour_bar((image * (1 - weight) + heat * weight).round().astype(np.uint8))


def _jet(grey: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def _colour_bar(picture: np.ndarray) -> np.ndarray:
    """The jet scale from 0 (left) to 1 (right), labelled, on a white card in the bottom-right corner."""
    height, width = picture.shape[:2]
    bar_width = max(16, min(width // 4, 200))
    bar_height = max(4, bar_width // 10)
    scale = bar_height / 16
    (text_width, text_height), baseline = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    pad = max(2, bar_height // 3)
    card_width, card_height = bar_width + 2 * text_width + 4 * pad, max(bar_height, text_height + baseline) + 2 * pad
    if card_width > width or card_height > height:
        return picture
    left, top = width - card_width, height - card_height
    picture[top:, left:] = 255
    ramp = np.repeat(np.linspace(0, 255, bar_width).round().astype(np.uint8)[None], bar_height, axis=0)
    bar_left, bar_top = left + text_width + 2 * pad, top + (card_height - bar_height) // 2
    picture[bar_top : bar_top + bar_height, bar_left : bar_left + bar_width] = _jet(ramp)
    text_y = top + (card_height + text_height) // 2
    for text, x in (("0", left + pad), ("1", bar_left + bar_width + pad)):
        cv2.putText(picture, text, (x, text_y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return picture


def levels(values: np.ndarray) -> np.ndarray:
    """Probabilities as 8-bit grey levels."""
    return (np.clip(values, 0.0, 1.0) * 255).round().astype(np.uint8)


def timeline(frames: Sequence[ScoredFrame], threshold: float, title: str) -> np.ndarray:
    """A chart of p_fake against time (or frame index), as an RGB image: a line per person in their colour (their
    faces'), or the frames' p_fake where faces have no person."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3), layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ax = figure.subplots()
    timed = all(frame.timestamp is not None for frame in frames)
    xs = [frame.timestamp if timed else frame.index for frame in frames]
    people: dict[int | None, list[tuple[float, float]]] = {}
    for x, frame in zip(xs, frames):
        for face in frame.faces:
            if face.p_fake is not None and face.person is not None:
                people.setdefault(face.person, []).append((x, face.p_fake))
    if not people:
        people[None] = [(x, frame.p_fake) for x, frame in zip(xs, frames) if frame.p_fake is not None]
    for person, points in sorted(people.items(), key=lambda item: -1 if item[0] is None else item[0]):
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=None if person is None else f"person {person}",
                    color=None if person is None else for_matplotlib(of_person(person)))
    faceless = [x for x, frame in zip(xs, frames) if frame.p_fake is None]
    if faceless:
        ax.plot(faceless, [0.0] * len(faceless), "x", color="grey", label="no face")
    if faceless or None not in people:
        ax.legend(fontsize="small", loc="upper right")
    ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)" if timed else "frame")
    ax.set_ylabel("p_fake")
    ax.set_title(title, fontsize="small")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
