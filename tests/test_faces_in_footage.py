"""What people film and photograph, through ``clipforensics detect`` at default options: a 1080p video with an
ordinary face in every frame, and a group photo whose five faces are all scored with --all-faces."""


from PIL import Image

from clipforensics.cli import main
from clipforensics.hub.checkpoints import save_model
from clipforensics.inference.provenance import read_rows

from .scenes import Head, matched, scene
from .test_faces import GROUP_PHOTO
from .videos import write_video

FRAMES = 8


def _rows(path) -> list[dict]:
    return list(read_rows(path))


def test_a_1080p_video_with_a_150_px_face_has_it_found_in_every_sampled_frame(tiny_detector, tmp_path):
    heads = [Head(150, (500 + 90 * step, 540 - 20 * step), tilt=-10 + 3 * step) for step in range(FRAMES)]
    video = write_video(tmp_path / "interview.mp4", [scene(1920, 1080, [head], "coffee") for head in heads])
    out = tmp_path / "rows.jsonl"

    status = main(["detect", str(video), "--model", str(save_model(tiny_detector, tmp_path / "model")),
                   "--frames", str(FRAMES), "--output", str(out)])

    [row] = _rows(out)
    assert status == 0 and (row["frames"], row["frames_with_faces"]) == (FRAMES, FRAMES)
    for head, frame in zip(heads, row["detail"], strict=True):
        assert matched([head.box], [face["box"] for face in frame["faces"]]) == ([True], 0)


def test_a_3000x2000_group_photo_has_its_five_faces_scored_with_all_faces(tiny_detector, tmp_path):
    photo = tmp_path / "team.jpg"
    Image.fromarray(scene(3000, 2000, GROUP_PHOTO, "rocket")).save(photo, quality=92)
    out = tmp_path / "rows.jsonl"

    status = main(["detect", str(photo), "--model", str(save_model(tiny_detector, tmp_path / "model")),
                   "--all-faces", "--output", str(out)])

    [row] = _rows(out)
    found = [face["box"] for face in row["detail"][0]["faces"]]
    assert status == 0 and row["faces"] == 5
    assert matched([head.box for head in GROUP_PHOTO], found) == ([True] * 5, 0)
