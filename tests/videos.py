"""Test media written on the spot: videos of a moving public-domain face (scikit-image's astronaut) or cat, and
a sound without pictures."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from skimage import data


def moving_frames(count: int, subject: str = "astronaut", size: tuple[int, int] = (480, 360),
                  zoom: int = 1) -> list[np.ndarray]:
    """``count`` RGB frames; the subject (300x300 pixels, times ``zoom``) slides right one pixel a frame; the
    top-left 32x32 block's brightness encodes the frame index (index * 4), so a decoded frame tells which one
    it is; a corner of fresh noise keeps every encoded frame about the same size, as in real footage."""
    noise = np.random.default_rng(0)
    picture = data.astronaut()[:300, 100:400] if subject == "astronaut" else data.chelsea()[:300, :300]
    picture = picture.repeat(zoom, axis=0).repeat(zoom, axis=1)
    side = len(picture)
    frames = []
    for index in range(count):
        frame = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
        frame[40 : 40 + side, 60 + index : 60 + side + index] = picture
        frame[:32, :32] = min(index * 4, 255)
        frame[-64:, -96:] = noise.integers(0, 256, (64, 96, 3), dtype=np.uint8)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, faststart: bool = False) -> Path:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_phone_video(path: Path, upright: list[np.ndarray], turn: int, mirrored: bool = False) -> Path:
    """A video stored as a phone stores it: the ``upright`` frames (mirrored left to right first, if
    ``mirrored``) turned ``turn`` degrees counter-clockwise, with a display matrix that tells players to turn
    them back (and mirror them): for a portrait video filmed upright (``turn=90``) the stored frames are
    landscape and the MP4's track matrix is the one an iPhone writes, (0 1 -1 0)."""
    stored = [np.ascontiguousarray(np.rot90(frame[:, ::-1] if mirrored else frame, turn // 90)) for frame in upright]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = stored[0].shape[1], stored[0].shape[0], "yuv420p"
        stream.set_display_rotation(-turn, hflip=mirrored)  # PyAV's angle is counter-clockwise
        for frame in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_sound(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    """A tone as AAC in an MP4 (iPod) container: what a phone's voice memo (.m4a) holds."""
    with av.open(str(path), "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        tone = np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def frame_number(image: np.ndarray) -> int:
    """The index a frame of ``moving_frames`` carries."""
    return int(round(float(image[4:28, 4:28].mean()) / 4))
