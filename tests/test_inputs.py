"""Every input gets a row: odd image modes are scored, undecodable files get a clear error."""

import io

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

    assert [r.path for r in results] == [str(tmp_path / n) for n in ("a/1.jpg", "a/z/3.png", "b/2.png", "c.png")]


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
