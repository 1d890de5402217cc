"""Every input gets a row: odd image modes are scored, undecodable files get a clear error."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipforensics import Predictor
from clipforensics.errors import MediaError
from clipforensics.media import load_image


@pytest.fixture
def detector(tiny_detector) -> Predictor:
    return Predictor(tiny_detector, precision="fp32")


@pytest.fixture
def face() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))


def _write_bad_inputs(folder, face):
    png = io.BytesIO()
    face.save(png, format="PNG")
    (folder / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 3])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("these are notes, not pixels\n")
    return {
        "truncated.png": "damaged image",
        "empty.png": "empty file",
        "notes.png": "not an image",
    }


def test_bad_files_get_rows_with_errors_and_the_batch_goes_on(detector, face, tmp_path):
    reasons = _write_bad_inputs(tmp_path, face)
    face.save(tmp_path / "good.png")
    paths = [tmp_path / "truncated.png", tmp_path / "good.png", tmp_path / "empty.png",
             tmp_path / "missing.png", tmp_path / "notes.png"]

    results = detector.predict(paths, faces="none")

    assert [r.path for r in results] == [str(p) for p in paths]
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in results}
    assert by_name["good.png"].ok and 0 <= by_name["good.png"].p_fake <= 1
    for name, reason in {**reasons, "missing.png": "no such file"}.items():
        assert by_name[name].p_fake is None and by_name[name].label is None
        assert reason in by_name[name].error


def _sixteen_bit_gray(face: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(face.convert("L")).astype(np.uint16) * 257)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda im: im.convert("CMYK"), id="CMYK"),
        pytest.param(lambda im: im.convert("RGBA"), id="RGBA"),
        pytest.param(lambda im: im.convert("L"), id="grayscale"),
        pytest.param(lambda im: im.convert("LA"), id="grayscale+alpha"),
        pytest.param(lambda im: im.convert("P"), id="palette"),
        pytest.param(_sixteen_bit_gray, id="16-bit"),
    ],
)
def test_images_in_any_mode_are_scored_as_rgb(detector, face, tmp_path, convert):
    image = convert(face)
    path = tmp_path / ("face.jpg" if image.mode == "CMYK" else "face.png")
    image.save(path)

    [result] = detector.predict([path], faces="none")

    assert result.ok, result.error
    assert load_image(path).mode == "RGB"


def test_sixteen_bit_images_keep_their_brightness(face, tmp_path):
    _sixteen_bit_gray(face).save(tmp_path / "deep.png")

    loaded = np.asarray(load_image(tmp_path / "deep.png").convert("L"), dtype=int)

    assert np.abs(loaded - np.asarray(face.convert("L"), dtype=int)).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    wide = Image.new("RGB", (40, 20), "red")
    exif = wide.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    wide.save(tmp_path / "rotated.jpg", exif=exif)

    assert load_image(tmp_path / "rotated.jpg").size == (20, 40)


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path):
    Image.new("L", (3000, 2000)).save(tmp_path / "large.png")

    with pytest.raises(MediaError, match="3000x2000 pixels exceeds the limit of 1,000,000"):
        load_image(tmp_path / "large.png", max_pixels=1_000_000)


def test_a_folder_is_expanded_recursively_in_sorted_order(detector, face, tmp_path):
    for name in ("b/2.png", "a/1.jpg", "a/z/3.png", "c.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        face.save(tmp_path / name)
    (tmp_path / "readme.txt").write_text("not an image")

    results = detector.predict(tmp_path, faces="none")

    assert [r.path for r in results] == [str(tmp_path / n) for n in ("a/1.jpg", "a/z/3.png", "b/2.png", "c.png",
                                                                     "readme.txt")]


def test_pil_images_and_arrays_are_scored_like_the_same_file(detector, face, tmp_path):
    face.save(tmp_path / "face.png")

    from_file, from_pil, from_array = detector.predict([tmp_path / "face.png", face, np.asarray(face)], faces="none")

    assert from_pil.path is None and from_array.path is None
    assert from_file.p_fake == from_pil.p_fake == from_array.p_fake


def test_a_malformed_array_gets_a_row_with_an_error(detector):
    [result] = detector.predict([np.zeros((8, 8, 3), dtype=np.float32)], faces="none")

    assert "uint8" in result.error


def test_an_unsupported_source_type_is_a_type_error(detector):
    with pytest.raises(TypeError, match="paths, PIL images or uint8 arrays"):
        detector.predict([42], faces="none")


def test_links_that_lead_nowhere_are_kept_given_directly_or_found_in_a_folder(tmp_path):
    from clipforensics.media import expand_sources

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "gone.png").symlink_to(tmp_path / "deleted.png")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    (tmp_path / "direct.png").symlink_to(tmp_path / "direct.png")

    paths = expand_sources([str(tmp_path / "direct.png"), str(folder)])

    assert paths == [tmp_path / "direct.png", folder / "gone.png", folder / "loop.jpg"]


def test_a_dangling_link_gets_a_row_naming_it_and_the_others_go_on(detector, face, tmp_path):
    face.save(tmp_path / "good.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "deleted.png")

    results = detector.predict(tmp_path, faces="none")

    assert [r.path.rsplit("/", 1)[-1] for r in results] == ["gone.png", "good.png"]
    assert "gone.png" in results[0].error and results[1].ok


def test_a_folder_without_files_gets_a_row_with_an_error(detector, tmp_path):
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")

    [result] = detector.predict(tmp_path / "empty", faces="none")

    assert result.path == str(tmp_path / "empty") and result.p_fake is None
    assert "a folder with no files in it" in result.error and "hidden files are not scanned" in result.error


def test_a_list_file_names_inputs_one_a_line_relative_to_its_folder(detector, face, tmp_path):
    (tmp_path / "set" / "more").mkdir(parents=True)
    face.save(tmp_path / "set" / "a.png")
    face.save(tmp_path / "set" / "more" / "b.png")
    (tmp_path / "set" / "list.txt").write_text(f"# a comment\na.png\n\n  more  \n{tmp_path / 'set' / 'a.png'}\n")

    results = detector.predict(f"@{tmp_path / 'set' / 'list.txt'}", faces="none")

    assert [r.path for r in results] == [str(tmp_path / "set" / n) for n in ("a.png", "more/b.png", "a.png")]
    assert all(r.ok for r in results)


def test_a_list_file_that_cannot_be_read_is_a_usage_error_naming_it(detector, tmp_path):
    from clipforensics.errors import UsageError

    with pytest.raises(UsageError, match=r"@.*missing\.txt: cannot read the list file"):
        detector.predict(f"@{tmp_path / 'missing.txt'}", faces="none")


def test_normalizing_a_read_only_array_warns_nothing():
    import subprocess
    import sys

    code = ("import warnings, numpy as np; warnings.simplefilter('error');"
            "from clipforensics.transforms import Preprocessing, normalize;"
            "a = np.zeros((1, 8, 8, 3), np.uint8); a.flags.writeable = False;"
            "assert normalize(a, Preprocessing()).shape == (1, 3, 8, 8)")

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr


def test_a_link_loop_a_broken_link_and_an_empty_folder_each_get_their_own_row(detector, tmp_path):
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    (tmp_path / "gone.png").symlink_to(tmp_path / "deleted.png")
    (tmp_path / "empty").mkdir()
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 100, dtype=np.uint8)).save(photo)

    rows = {Path(r.path).name: r for r in detector.predict(
        [tmp_path / "loop.mp4", tmp_path / "gone.png", tmp_path / "empty", photo], faces="none")}

    assert rows["loop.mp4"].kind == "video" and "symbolic link loop" in rows["loop.mp4"].error
    assert "broken link to" in rows["gone.png"].error and "deleted.png" in rows["gone.png"].error
    assert "a folder with no files" in rows["empty"].error
    assert rows["photo.png"].ok


def test_inputs_named_by_urls_are_listed_and_read_like_files(detector, face, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    face.save(tmp_path / "in" / "sub" / "a.png")
    (tmp_path / "in" / "notes.txt").write_text("not media")
    (tmp_path / "list.txt").write_text(f"file://{tmp_path}/in/sub/a.png\nin/sub/a.png\nfile://{tmp_path}/gone.png\n")

    notes, url, listed, relative, gone = detector.predict([f"file://{tmp_path}/in", f"@{tmp_path / 'list.txt'}"],
                                                          faces="none")

    assert notes.error == f"file://{tmp_path}/in/notes.txt: not an image or a video" and notes.kind == "other"
    assert url.path == listed.path == f"file://{tmp_path}/in/sub/a.png"
    assert relative.path == str(tmp_path / "in/sub/a.png")
    assert url.p_fake == relative.p_fake and url.error is None
    assert gone.error.startswith(f"file://{tmp_path}/gone.png: cannot be read")
