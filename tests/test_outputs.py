"""What detect and localize write never lands on an input or on another input's output, and a long video
is processed a piece at a time, its files written as the pieces come."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from clipforensics import Predictor
from clipforensics.errors import UsageError
from clipforensics.inference.prepare import prepare
from clipforensics.faces.options import FaceOptions
from clipforensics.media import Sampler, open_video
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.transforms import Preprocessing

from .videos import moving_frames, write_video


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()).save(folder / "a.png")
    Image.fromarray(data.astronaut()).save(folder / "a.jpg")
    return folder


def _localizer() -> Predictor:
    torch.manual_seed(0)
    return Predictor(create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="linear", layer=1)), precision="fp32")


def test_annotating_into_the_inputs_folder_never_replaces_an_input(tiny_detector, photos):
    before = {path.name: path.read_bytes() for path in photos.iterdir()}

    Predictor(tiny_detector, precision="fp32").predict(sorted(photos.iterdir()), annotate=photos, save_crops=photos)

    assert {path.name: path.read_bytes() for path in photos.iterdir() if path.name in before} == before
    assert (photos / "a.png.png").is_file() and (photos / "a.jpg.png").is_file()  # each input its own copy


def test_annotating_a_photo_into_its_own_folder_writes_beside_it(tiny_detector, photos):
    (photos / "a.jpg").unlink()
    photo = (photos / "a.png").read_bytes()

    Predictor(tiny_detector, precision="fp32").predict([photos / "a.png"], annotate=photos)

    assert (photos / "a.png").read_bytes() == photo and (photos / "a.out.png").is_file()


def test_inputs_sharing_a_name_get_distinct_map_files(photos, tmp_path):
    results = _localizer().predict([photos / "a.png", photos / "a.jpg"], save_maps=tmp_path / "maps")

    masks = [result.files["mask"] for result in results]
    assert len(set(masks)) == 2 and all(Image.open(mask).size == (512, 512) for mask in masks)
    assert sorted(path.name for path in (tmp_path / "maps").iterdir()) == [
        "a.jpg.mask.png", "a.jpg.overlay.png", "a.png.mask.png", "a.png.overlay.png"]


def test_an_output_folder_that_is_a_file_is_a_usage_error(tiny_detector, photos, tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")

    with pytest.raises(UsageError, match="is a file, not a folder"):
        Predictor(tiny_detector).predict([photos / "a.png"], annotate=taken)
    assert taken.read_text() == "mine"


def test_a_video_is_prepared_in_pieces_its_last_carrying_the_notes(tmp_path):
    video = write_video(tmp_path / "walk.mp4", moving_frames(22))

    pieces = list(prepare(video, Preprocessing(), FaceOptions(mode="none"), None, Sampler("all"), piece_frames=8))

    assert [len(piece.frames) for piece in pieces] == [8, 8, 6]
    assert [piece.last for piece in pieces] == [False, False, True]
    assert [frame.index for piece in pieces for frame in piece.frames] == list(range(22))


def test_a_video_is_decoded_as_its_frames_are_taken(tmp_path):
    video = write_video(tmp_path / "walk.mp4", moving_frames(30))
    media = open_video(video, Sampler("all"))

    first = next(iter(media.frames))

    assert first.index == 0 and media.notes == [] and media.total_frames == 30
    assert not isinstance(media.frames, list)  # nothing past the first frame is held


def test_a_long_video_s_annotation_and_maps_hold_every_frame_but_its_result_keeps_none(tmp_path):
    video = write_video(tmp_path / "walk.mp4", moving_frames(20))
    localizer = _localizer()
    localizer.batch_size = 6  # pieces of 6 frames

    [result] = localizer.predict([video], frames=Sampler("all"), save_maps=tmp_path / "maps")

    assert len(result.frames) == 20 and result.maps == [] and result.images == []
    assert len(list((tmp_path / "maps" / "walk.mask").iterdir())) == 20
    import av
    with av.open(result.files["overlay"]) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20
    assert not list((tmp_path / "maps").glob("*.part"))


def test_a_failed_input_leaves_no_partial_files(tiny_detector, tmp_path):
    cat = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(cat)

    [result] = Predictor(tiny_detector).predict([cat], annotate=tmp_path / "drawn")

    assert result.error.startswith("no face found") and not list((tmp_path / "drawn").rglob("*"))


def test_a_face_smaller_than_the_search_looks_for_gets_an_error_saying_what_was_searched_and_what_would_help(
        tiny_detector, tmp_path):
    small_face = np.full((2400, 3200, 3), 120, dtype=np.uint8)
    small_face[1000:1080, 1500:1580] = np.asarray(Image.fromarray(data.astronaut()[0:220, 140:360]).resize((80, 80)))
    Image.fromarray(small_face).save(tmp_path / "crowd.png")

    [result] = Predictor(tiny_detector).predict([tmp_path / "crowd.png"])

    assert result.error == ("no face found in image (searched 3200x2400 at full size with mtcnn for faces of 96 px "
                            "and more; --face-min-size 48 looks for faces down to 48 px, slower)")
    [found] = Predictor(tiny_detector).predict([tmp_path / "crowd.png"], faces=FaceOptions(min_face=40))
    assert found.ok and found.faces == 1
