"""Every file a row: what a file holds is judged by its content (``media.kind_of``), so that a file given by name
and the same file found in a folder are read alike; a folder's hidden files are counted, not scanned."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipforensics.cli import main
from clipforensics.hub.checkpoints import save_model
from clipforensics.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, kind_of
from clipforensics.inference.provenance import read_rows

from .videos import moving_frames, write_sound, write_video


@pytest.fixture
def model_dir(tiny_detector, tmp_path) -> Path:
    return save_model(tiny_detector, tmp_path / "model")


@pytest.fixture
def picture() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))


def _heic(picture: Image.Image, path: Path) -> Path:
    from pillow_heif import from_pillow

    from_pillow(picture).save(path)
    return path


def _jpeg_bytes(picture: Image.Image) -> bytes:
    encoded = io.BytesIO()
    picture.save(encoded, format="JPEG")
    return encoded.getvalue()


def _phone_folder(folder: Path, picture: Image.Image) -> Path:
    """What a phone's export holds: AVIF and HEIC photos, a photo that lost its suffix, a voice memo, a note."""
    folder.mkdir()
    picture.save(folder / "photo.avif")
    _heic(picture, folder / "photo.heic")
    (folder / "photo").write_bytes(_jpeg_bytes(picture))
    write_sound(folder / "memo.m4a")
    (folder / "notes.txt").write_text("taken on the 3rd\n")
    return folder


def _detect(model_dir: Path, inputs: list[Path], out: Path) -> tuple[int, dict[str, dict]]:
    status = main(["detect", *map(str, inputs), "--model", str(model_dir), "--faces", "none", "--output", str(out)])
    return status, {Path(row["path"]).name: row for row in read_rows(out)}


def test_a_folder_of_avif_heic_extensionless_and_audio_files_gives_each_its_row(model_dir, picture, tmp_path):
    folder = _phone_folder(tmp_path / "phone", picture)

    status, rows = _detect(model_dir, [folder], tmp_path / "out.jsonl")

    assert status == 1 and sorted(rows) == ["memo.m4a", "notes.txt", "photo", "photo.avif", "photo.heic"]
    for name in ("photo.avif", "photo.heic", "photo"):
        assert rows[name]["kind"] == "image" and rows[name]["error"] is None and 0 <= rows[name]["p_fake"] <= 1
    assert rows["memo.m4a"]["kind"] == "audio" and rows["memo.m4a"]["p_fake"] is None
    assert rows["memo.m4a"]["error"] == f"{folder / 'memo.m4a'}: an audio file: no video stream"


def test_a_file_that_is_neither_image_nor_video_gets_a_row_saying_so(model_dir, picture, tmp_path):
    folder = _phone_folder(tmp_path / "phone", picture)

    _, rows = _detect(model_dir, [folder], tmp_path / "out.jsonl")

    assert rows["notes.txt"]["error"] == f"{folder / 'notes.txt'}: not an image or a video"
    assert rows["notes.txt"]["kind"] == "other" and rows["notes.txt"]["label"] is None


def test_a_rerun_into_the_scanned_folder_does_not_read_its_own_results_or_pictures_as_inputs(model_dir, picture,
                                                                                              tmp_path, caplog):
    folder = _phone_folder(tmp_path / "phone", picture)
    out, drawn = folder / "out.jsonl", folder / "drawn"
    arguments = ["detect", str(folder), "--model", str(model_dir), "--faces", "none", "--output", str(out),
                 "--annotate", str(drawn)]
    main(arguments)
    first = out.read_text()

    main(arguments)

    assert out.read_text().count("\n") == first.count("\n") == 1 + 5  # the header, and a row per input
    assert "4 files of this command's own output not read as inputs" in caplog.text  # out.jsonl, 3 pictures


def test_a_file_given_by_name_gets_the_row_it_gets_when_found_in_a_folder(model_dir, picture, tmp_path):
    folder = _phone_folder(tmp_path / "phone", picture)
    _, found = _detect(model_dir, [folder], tmp_path / "found.jsonl")

    _, named = _detect(model_dir, sorted(folder.iterdir()), tmp_path / "named.jsonl")

    assert named == found


@pytest.mark.parametrize("name, write, kind", [
    ("photo.avif", lambda picture, path: picture.save(path), "image"),
    ("photo.heic", _heic, "image"),
    ("photo", lambda picture, path: path.write_bytes(_jpeg_bytes(picture)), "image"),
    ("photo.mp4", lambda picture, path: picture.save(path, format="PNG"), "image"),
    ("clip", lambda picture, path: write_video(path.with_suffix(".mp4"), moving_frames(2)).rename(path), "video"),
    ("memo.m4a", lambda picture, path: write_sound(path), "audio"),
    ("notes.txt", lambda picture, path: path.write_text("notes"), "other"),
    ("metadata.json", lambda picture, path: path.write_text("{}"), "other"),
    ("cut.png", lambda picture, path: path.write_bytes(b"\x89PNG\r\n"), "image"),
    ("cut.mp4", lambda picture, path: path.write_bytes(b"not a video yet"), "video"),
    ("gone.png", lambda picture, path: None, "image"),
])
def test_the_kind_of_a_file_is_told_by_its_content_and_by_its_name_only_when_the_content_cannot_tell(
        picture, tmp_path, name, write, kind):
    write(picture, tmp_path / name)

    assert kind_of(tmp_path / name) == kind


def test_hidden_files_and_folders_are_counted_in_a_warning_not_scanned(model_dir, picture, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / ".git" / "objects").mkdir(parents=True)
    picture.save(folder / ".git" / "objects" / "blob.png")
    picture.save(folder / "photo.jpg")
    (folder / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "elsewhere").symlink_to(tmp_path, target_is_directory=True)

    status, rows = _detect(model_dir, [folder], tmp_path / "out.jsonl")

    assert status == 0 and list(rows) == ["photo.jpg"]
    assert (f"clipforensics: {folder}: 2 hidden files, 1 hidden folder and 1 link to a folder not scanned (hidden: a "
            "name starting with '.'); give one by name to read it") in capsys.readouterr().err.splitlines()


def test_a_hidden_file_given_by_name_is_read(model_dir, picture, tmp_path):
    picture.save(tmp_path / ".photo.png")

    status, rows = _detect(model_dir, [tmp_path / ".photo.png"], tmp_path / "out.jsonl")

    assert status == 0 and rows[".photo.png"]["kind"] == "image" and rows[".photo.png"]["p_fake"] is not None


@pytest.mark.parametrize("command", ["detect", "localize"])
def test_the_help_names_the_suffixes_searched_and_says_other_files_get_a_row(command, capsys):
    assert main([command, "--help"]) == 0

    shown = " ".join(capsys.readouterr().out.split())
    assert all(suffix in shown for suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    assert "every file in it gets a row" in shown and "not an image or a video" in shown
