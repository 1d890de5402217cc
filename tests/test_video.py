"""Videos are decoded once and sampled; damaged, empty and oversized inputs get a clear row."""

import json

import av
import numpy as np
import pytest
from PIL import Image

from clipforensics import Predictor
from clipforensics.errors import MediaError, OptionError
from clipforensics.media import Sampler, read_media, read_video

from .videos import frame_number, moving_frames, write_video

FRAMES = 40


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "face.mp4", moving_frames(FRAMES))


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        (Sampler("uniform", 5), [0, 9, 19, 29, 39]),
        (Sampler("stride", 12), [0, 12, 24, 36]),
        (Sampler("spread", 4), [0, 10, 20, 39]),
        (Sampler("spread", 3), [0, 20, 39]),
        (Sampler("all"), list(range(FRAMES))),
    ],
)
def test_samplers_keep_the_expected_frames(face_video, sampler, expected):
    media = read_video(face_video, sampler)

    assert [frame.index for frame in media.frames] == expected
    assert [frame_number(frame.image) for frame in media.frames] == expected
    assert [frame.timestamp for frame in media.frames] == pytest.approx([i / 25 for i in expected])
    assert media.total_frames == FRAMES and media.notes == []


def test_sampled_frames_are_a_full_decodes_though_frames_no_other_refers_to_go_undecoded(face_video):
    media = read_video(face_video, Sampler("uniform", 7))
    with av.open(str(face_video)) as container:
        everything = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]

    assert len(media.frames) == 7
    assert all(np.array_equal(frame.image, everything[frame.index]) for frame in media.frames)


def test_uniform_is_linspace_over_the_whole_video():
    assert Sampler("uniform", 32).pick(300) == np.linspace(0, 299, 32, dtype=int).tolist()


def test_the_stride_sampler_takes_its_own_stride_and_frames_keeps_the_count():
    assert Sampler.of("stride", 32, 5).pick(20) == [0, 5, 10, 15]
    assert Sampler.of("uniform", 3, None).pick(21) == [0, 10, 20]


@pytest.mark.parametrize(("kind", "stride", "message"), [
    ("stride", None, "the stride sampler needs a stride N"),
    ("uniform", 4, "a stride is for the stride sampler, not 'uniform'"),
])
def test_a_stride_without_the_stride_sampler_or_the_other_way_round_is_refused_naming_the_stride(kind, stride,
                                                                                                 message):
    with pytest.raises(OptionError, match=message) as refused:
        Sampler.of(kind, 32, stride)

    assert refused.value.option == "stride"


def test_spread_starts_in_the_middle_then_takes_the_farthest_frame():
    from clipforensics.media import spread_order

    assert spread_order(10) == [5, 0, 9, 2, 7, 1, 3, 4, 6, 8]


def test_a_damaged_tail_keeps_the_frames_before_the_damage_and_says_so(tmp_path):
    whole = write_video(tmp_path / "whole.mp4", moving_frames(FRAMES), faststart=True).read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(whole[: len(whole) * 6 // 10])

    media = read_video(damaged, Sampler("uniform", 5))

    assert [frame.index for frame in media.frames] == [frame_number(f.image) for f in media.frames]
    assert 0 < len(media.frames) < 5
    assert any("damaged stream" in note for note in media.notes)
    assert any("sampled frames could not be decoded" in note for note in media.notes)


def test_a_zero_length_video_is_an_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")

    with pytest.raises(MediaError, match="empty file"):
        read_video(tmp_path / "empty.mp4")


def test_an_image_of_20000_by_20000_pixels_is_refused(tmp_path):
    Image.new("1", (20000, 20000)).save(tmp_path / "huge.png")

    with pytest.raises(MediaError, match="huge.png.*(exceeds|decompression)"):
        read_media(tmp_path / "huge.png")


@pytest.fixture
def detector(tiny_detector):
    return Predictor(tiny_detector, precision="fp32")


def test_detect_on_an_mp4_gives_one_video_row_with_per_frame_detail(detector, face_video):
    [result] = detector.predict([face_video], frames=8)

    row = json.loads(result.to_json())
    assert row["kind"] == "video" and row["error"] is None
    assert (row["frames"], row["frames_with_faces"], row["frames_without_faces"], row["faces"]) == (8, 8, 0, 8)
    assert [frame["index"] for frame in row["detail"]] == Sampler("uniform", 8).pick(FRAMES)
    assert row["p_fake"] == pytest.approx(np.mean([frame["p_fake"] for frame in row["detail"]]))
    assert all(len(frame["faces"]) == 1 and len(frame["faces"][0]["box"]) == 4 for frame in row["detail"])


def test_aggregation_of_frames_is_configurable(detector, face_video):
    [mean] = detector.predict([face_video], frames=6)
    [largest] = detector.predict([face_video], frames=6, aggregate_by="max")

    assert largest.p_fake == pytest.approx(max(frame.p_fake for frame in mean.frames))


def test_a_video_without_faces_gets_a_row_saying_so(detector, tmp_path):
    cat = write_video(tmp_path / "cat.mp4", moving_frames(12, subject="cat"))

    [result] = detector.predict([cat], frames=4)

    assert result.p_fake is None and result.error.startswith(
        "no face found in any of the 4 sampled frames (searched 480x360 at full size with mtcnn for faces of 64 px")
    assert result.summary()["frames_without_faces"] == 4


def test_a_damaged_video_is_scored_on_what_decoded_and_the_row_says_so(detector, tmp_path):
    whole = write_video(tmp_path / "whole.mp4", moving_frames(FRAMES), faststart=True).read_bytes()
    (tmp_path / "damaged.mp4").write_bytes(whole[: len(whole) * 6 // 10])

    [result] = detector.predict([tmp_path / "damaged.mp4"], frames=5)

    assert result.ok and result.p_fake is not None
    assert "damaged stream" in result.summary()["note"]


def test_images_and_videos_mix_in_one_call_and_frames_without_faces_are_reported(detector, tmp_path):
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(data.chelsea()).save(tmp_path / "cat.png")
    frames = moving_frames(10)
    frames[3:6] = moving_frames(10, subject="cat")[3:6]
    write_video(tmp_path / "mixed.mp4", frames)

    astronaut, cat, mixed = detector.predict(
        [tmp_path / "astronaut.png", tmp_path / "cat.png", tmp_path / "mixed.mp4"], frames=10
    )

    assert astronaut.ok and astronaut.kind == "image" and astronaut.faces == 1
    assert cat.error.startswith("no face found in image (searched")
    assert mixed.ok and mixed.frames_with_faces == 7
    assert "no face in 3 of 10 frames (3, 4, 5)" in mixed.summary()["note"]
    assert [frame.p_fake is None for frame in mixed.frames] == [i in (3, 4, 5) for i in range(10)]


def test_crops_and_annotations_mirror_the_inputs_paths(detector, face_video, tmp_path):
    from skimage import data

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(data.astronaut()).save(tmp_path / "a" / "same.png")
    Image.fromarray(data.astronaut()).save(tmp_path / "b" / "same.png")
    crops, drawn = tmp_path / "crops", tmp_path / "annotated"

    video = tmp_path / "v" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(face_video.read_bytes())

    results = detector.predict([tmp_path / "a" / "same.png", tmp_path / "b" / "same.png", video], frames=3,
                               save_crops=crops, annotate=drawn)

    assert all(result.ok for result in results)
    assert sorted(p.relative_to(crops).as_posix() for p in crops.rglob("*.png"))[:2] == [
        "a/same/000000_0.png", "b/same/000000_0.png"]
    assert Image.open(crops / "a" / "same" / "000000_0.png").size == (256, 256)
    assert len(list(crops.rglob("*.png"))) == 2 + 3
    assert (drawn / "a" / "same.png").is_file() and (drawn / "b" / "same.png").is_file()
    assert read_video(drawn / "v" / "clip.mp4", Sampler("all")).total_frames == 3


def test_an_undecodable_video_is_reported_as_a_video(detector, tmp_path):
    (tmp_path / "clip.mp4").write_bytes(np.random.default_rng(0).bytes(4000))

    [result] = detector.predict([tmp_path / "clip.mp4"])

    assert result.kind == "video" and "unreadable video" in result.error


def test_an_audio_file_is_reported_as_audio_without_a_video_stream(detector, tmp_path):
    import av

    sound = tmp_path / "voice.wav"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())

    [result] = detector.predict([sound])

    assert result.kind == "audio" and "no video stream" in result.error


def test_a_video_with_an_unusual_suffix_is_read_as_a_video(detector, face_video, tmp_path):
    renamed = tmp_path / "clip.bin"
    renamed.write_bytes(face_video.read_bytes())

    [result] = detector.predict([renamed], frames=4)

    assert result.kind == "video" and result.ok and len(result.frames) == 4


def test_a_cut_short_mkv_is_scored_on_what_it_holds_and_says_so(detector, tmp_path):
    whole = write_video(tmp_path / "walk.mkv", moving_frames(100))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])

    [result] = detector.predict([cut], frames=4)

    assert result.ok and len(result.frames) >= 3  # the last sampled frame may sit in the cut packet
    assert any("frames its header declares" in note for note in result.notes)
