"""Videos are decoded as players show them: a phone's portrait video, stored as landscape frames with a display
matrix that turns them upright, is read upright, and so are its boxes and its annotated copy."""

import struct
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from clipforensics.cli import main
from clipforensics.hub.checkpoints import save_model
from clipforensics.media import Sampler, open_video, read_video
from clipforensics.inference.provenance import read_rows

from .videos import frame_number, moving_frames, write_phone_video, write_video

FRAMES = 4
PORTRAIT = (720, 1280)
"""Width and height as shown: a phone held upright."""
CODEC_ERROR = 4
"""The mean absolute difference an H.264 round trip at crf 12 stays within, in 8-bit levels."""


@pytest.fixture(scope="module")
def upright() -> list[np.ndarray]:
    """Portrait frames with the astronaut's face about 300 px tall in the upper half."""
    return moving_frames(FRAMES, size=PORTRAIT, zoom=2)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def _track_matrix(path: Path) -> tuple[float, ...]:
    """The a, b, c, d of the MP4's (version 0) track header matrix, as 16.16 fixed-point numbers."""
    data = path.read_bytes()
    header = data.index(b"tkhd")
    assert data[header + 4] == 0
    matrix = struct.unpack(">9i", data[header + 44 : header + 80])
    return tuple(value / 65536 for value in (matrix[0], matrix[1], matrix[3], matrix[4]))


def test_a_portrait_test_video_carries_the_matrix_a_phone_filming_upright_writes(upright, tmp_path):
    video = write_phone_video(tmp_path / "portrait.mp4", upright, turn=90)

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == PORTRAIT[::-1]  # stored landscape
    assert _track_matrix(video) == (0, 1, -1, 0)


@pytest.mark.parametrize(("turn", "mirrored"), [(90, False), (180, False), (270, False), (0, True), (90, True)])
def test_frames_are_decoded_as_the_display_matrix_shows_them(upright, tmp_path, turn, mirrored):
    video = write_phone_video(tmp_path / "phone.mp4", upright, turn, mirrored)

    media = read_video(video, Sampler("all"))

    assert [frame.image.shape for frame in media.frames] == [(PORTRAIT[1], PORTRAIT[0], 3)] * FRAMES
    assert [frame_number(frame.image) for frame in media.frames] == list(range(FRAMES))
    assert max(_difference(frame.image, shown) for frame, shown in zip(media.frames, upright)) < CODEC_ERROR


@pytest.mark.parametrize("turn", [None, 0])
def test_a_video_without_a_display_matrix_or_turned_by_0_is_decoded_as_stored(tmp_path, turn):
    frames = moving_frames(FRAMES)
    video = write_video(tmp_path / "plain.mp4", frames) if turn is None else \
        write_phone_video(tmp_path / "plain.mp4", frames, turn)
    with av.open(str(video)) as container:
        stored = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]

    media = read_video(video, Sampler("all"))

    assert all(np.array_equal(frame.image, raw) for frame, raw in zip(media.frames, stored, strict=True))


def test_a_turned_video_is_still_decoded_one_frame_at_a_time(tmp_path):
    frames = 24
    video = write_phone_video(tmp_path / "long.mp4", moving_frames(frames, size=PORTRAIT), turn=90)
    frame_bytes = PORTRAIT[0] * PORTRAIT[1] * 3

    tracemalloc.start()
    try:
        shapes = [frame.image.shape for frame in open_video(video, Sampler("all")).frames]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert shapes == [(PORTRAIT[1], PORTRAIT[0], 3)] * frames
    assert peak < 4 * frame_bytes  # the turned frames in hand (numpy's allocations), not the video's 24


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_detect_finds_the_face_in_every_frame_and_annotates_upright(tiny_detector, upright, tmp_path, turn):
    video = write_phone_video(tmp_path / "phone.mp4", upright, turn)
    out, drawn = tmp_path / "out.jsonl", tmp_path / "drawn"

    status = main(["detect", str(video), "--model", str(save_model(tiny_detector, tmp_path / "model")),
                   "--output", str(out), "--annotate", str(drawn)])

    [row] = read_rows(out)
    assert status == 0 and row["error"] is None
    assert (row["frames"], row["frames_with_faces"]) == (FRAMES, FRAMES)
    boxes = [frame["faces"][0]["box"] for frame in row["detail"]]
    assert all(60 <= x0 < x1 <= 680 and 40 <= y0 < y1 <= 640 for x0, y0, x1, y1 in boxes)  # on the astronaut
    annotated = read_video(drawn / "phone.mp4", Sampler("all")).frames
    assert [frame.image.shape for frame in annotated] == [(PORTRAIT[1], PORTRAIT[0], 3)] * FRAMES
    for frame, shown, (x0, y0, x1, y1) in zip(annotated, upright, boxes, strict=True):
        below = slice(round(y1) + 20, -64)  # above the corner of noise, which re-encodes with larger errors
        assert _difference(frame.image[below], shown[below]) < CODEC_ERROR  # the picture, upright
        edge = frame.image[round(y0) + 20 : round(y1) - 20, round(x0)]
        assert _difference(edge, shown[round(y0) + 20 : round(y1) - 20, round(x0)]) > 40  # the box, drawn on it
