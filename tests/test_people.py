"""People in a video: faces followed through the sampled frames, a verdict per person, the video's from its people,
and no verdict without evidence. The videos are made here from two public-domain photos of two different people
(scikit-image's astronaut and cameraman), pasted as moving heads."""


import numpy as np
import pytest
import torch

from clipforensics import Predictor
from clipforensics.cli import main
from clipforensics.hub.checkpoints import save_model
from clipforensics.metrics import aggregate
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.inference.provenance import read_rows

from .scenes import Head, scene
from .videos import write_video

WIDTH, HEIGHT, SIDE, FRAMES = 560, 300, 80, 24


def crossing(index: int) -> list[Head]:
    """The astronaut walks left to right and the cameraman right to left; they meet in the middle, where the one in
    front hides the other."""
    share = index / (FRAMES - 1)
    return [Head(SIDE, (90 + 380 * share, 150 + 15 * np.sin(6 * share))),
            Head(SIDE, (470 - 380 * share, 160), photo="camera")]


def leaving(index: int) -> list[Head]:
    """The astronaut drifts right all along; the cameraman leaves for frames 8 to 13 and comes back elsewhere."""
    heads = [Head(SIDE, (110 + 3 * index, 150))]
    if not 8 <= index < 14:
        heads.append(Head(SIDE, (440, 150) if index < 8 else (380, 120), photo="camera"))
    return heads


SCENES = {"crossing": crossing, "leaving": leaving}


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    return Predictor(create_model(ModelConfig(TINY_BACKBONE)).eval(), precision="fp32")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people")
    return {name: write_video(folder / f"{name}.mp4", [scene(WIDTH, HEIGHT, heads(index)) for index in range(FRAMES)])
            for name, heads in SCENES.items()}


@pytest.fixture(scope="module")
def results(predictor, videos):
    """Each video scored with every frame sampled, by both rules."""
    return {(name, rule): predictor.predict([video], frames=FRAMES, video_score=rule)[0]
            for name, video in videos.items() for rule in ("people", "largest")}


def _who(heads: list[Head], box: list[float]) -> str:
    """The photo of the pasted head nearest the face's box."""
    centre = (np.array(box[:2]) + box[2:]) / 2
    return min(heads, key=lambda head: np.hypot(*(np.array(head.centre) - centre))).photo


@pytest.mark.parametrize("name", SCENES)
def test_each_pasted_face_keeps_one_person_id_through_the_video(results, name):
    result = results[name, "people"]

    ids: dict[str, set[int]] = {"astronaut": set(), "camera": set()}
    for index, frame in enumerate(result.frames):
        for face in frame.faces:
            ids[_who(SCENES[name](index), face.box)].add(face.person)
    assert ids == {"astronaut": {0}, "camera": {1}}
    assert [person.id for person in result.people] == [0, 1]


def test_a_person_who_leaves_is_counted_in_the_frames_that_show_them(results):
    astronaut, cameraman = results["leaving", "people"].people

    assert astronaut.frames == FRAMES and cameraman.frames <= FRAMES - 6
    assert astronaut.first == cameraman.first == 0.0 and astronaut.last == cameraman.last


@pytest.mark.parametrize("name", SCENES)
def test_a_persons_p_fake_is_the_aggregate_of_their_faces_in_the_detail(results, name):
    row = results[name, "people"].to_dict()

    for person in row["people"]:
        faces = [face["p_fake"] for frame in row["detail"] for face in frame["faces"] if face["person"] == person["id"]]
        assert person["p_fake"] == aggregate(faces, "mean")
        assert person["frames"] == len(faces) and person["label"] == ("fake" if person["p_fake"] >= 0.5 else "real")


@pytest.mark.parametrize("name", SCENES)
def test_a_videos_p_fake_is_the_highest_of_its_people_seen_in_enough_frames(results, name):
    result = results[name, "people"]

    counted = [person for person in result.people if person.frames >= 4]
    decider = max(counted, key=lambda person: person.p_fake)
    assert (result.p_fake, result.deciding_person) == (decider.p_fake, decider.id)
    assert result.summary()["deciding_person"] == decider.id
    assert result.label == ("fake" if result.p_fake >= 0.5 else "real")
    assert result.person(decider.id) is decider


def test_a_person_seen_in_fewer_frames_than_asked_does_not_decide(predictor, videos):
    [result] = predictor.predict([videos["leaving"]], frames=FRAMES, min_person_frames=FRAMES)

    assert result.deciding_person == 0 and result.p_fake == result.person(0).p_fake


def test_largest_scores_the_largest_face_of_each_frame_and_takes_the_mean_as_before(results):
    result = results["crossing", "largest"]

    assert all(len(frame.faces) == 1 for frame in result.frames)
    assert result.p_fake == aggregate([frame.faces[0].p_fake for frame in result.frames], "mean")
    assert result.deciding_person is None and result.label == ("fake" if result.p_fake >= 0.5 else "real")


def test_largest_with_all_faces_takes_the_mean_of_each_frames_highest_face(predictor, videos, results):
    [result] = predictor.predict([videos["crossing"]], frames=FRAMES, video_score="largest", faces="auto")
    [every] = predictor.predict([videos["crossing"]], frames=FRAMES, video_score="largest",
                                faces=_all_faces())

    assert result.to_dict() == results["crossing", "largest"].to_dict()
    assert every.p_fake == aggregate([max(face.p_fake for face in frame.faces) for frame in every.frames], "mean")
    assert [len(frame.faces) for frame in every.frames] == [len(frame.faces) for frame in
                                                             results["crossing", "people"].frames]


def _all_faces():
    from clipforensics.faces.options import FaceOptions

    return FaceOptions.of({"all_faces": True})


def test_an_image_has_each_face_as_a_person_of_its_own(predictor, tmp_path):
    from PIL import Image

    photo = tmp_path / "two.png"
    Image.fromarray(scene(WIDTH, HEIGHT, crossing(0))).save(photo)

    [result] = predictor.predict([photo], faces=_all_faces())

    assert [(person.id, person.frames) for person in result.people] == [(0, 1), (1, 1)]
    assert [face.person for face in result.frames[0].faces] == [0, 1]
    with pytest.raises(KeyError, match="no person 2 in .*two.png: its people are \\[0, 1\\]"):
        result.person(2)


def test_a_video_with_a_face_in_2_of_32_frames_is_insufficient_and_counted_as_scored(predictor, tmp_path, capsys):
    frames = [scene(320, 200, [Head(SIDE, (160, 100))] if index in (5, 20) else []) for index in range(32)]
    video = write_video(tmp_path / "glimpse.mp4", frames)
    out = tmp_path / "rows.jsonl"

    status = main(["detect", str(video), "--model", str(save_model(predictor.model, tmp_path / "model")),
                   "--frames", "32", "--output", str(out)])

    [row] = read_rows(out)
    assert status == 0 and row["label"] == "insufficient" and row["error"] is None
    assert row["p_fake"] == row["people"][0]["p_fake"] and row["frames_with_faces"] == 2
    assert "a face found in 2 of 32 sampled frames: too few for a verdict (--min-face-frames 4)" in row["note"]
    assert "1 input: 0 fake, 0 real, 1 insufficient, 0 failed" in capsys.readouterr().err


def test_a_videos_plot_draws_a_line_per_person_in_their_colour(results):
    from clipforensics.colours import of_person

    picture = results["leaving", "people"].plot()

    for person in (0, 1):
        assert (np.abs(picture.astype(int) - of_person(person)).sum(axis=-1) < 30).sum() > 100


def test_annotated_frames_box_each_person_in_their_colour(predictor, videos, tmp_path):
    import av

    from clipforensics.colours import of_person

    [result] = predictor.predict([videos["leaving"]], frames=4, annotate=tmp_path)

    with av.open(str(next(tmp_path.rglob("*.mp4")))) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    for face in result.frames[0].faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        edge = first[(y0 + y1) // 2, x0 - 1 : x0 + 2].astype(int)
        assert (np.abs(edge - of_person(face.person)).sum(axis=-1) < 60).any()


def test_each_person_keeps_their_faces_crop_which_only_the_services_rows_carry_as_a_small_jpeg(results):
    import base64
    import io

    from PIL import Image

    from clipforensics.inference.rows import FACE_SIDE, PERSON_FACE, PERSON_FIELDS, detection_row

    result = results["crossing", "people"]

    assert all(person.face.dtype == np.uint8 and person.face.shape[2] == 3 for person in result.people)
    assert not np.array_equal(result.person(0).face, result.person(1).face)
    assert [list(person) for person in result.to_dict()["people"]] == [list(PERSON_FIELDS)] * 2
    served = detection_row(result, faces=True)["people"][1][PERSON_FACE]
    thumbnail = Image.open(io.BytesIO(base64.b64decode(served.removeprefix("data:image/jpeg;base64,"))))
    assert thumbnail.size == (FACE_SIDE, FACE_SIDE)
    assert all(person.face is None for person in result.without_arrays().people)
