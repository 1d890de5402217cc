"""`clipforensics localize`: mask and overlay files mirroring the inputs' paths, a row per input (errors
included), faces warped back onto whole photos, videos, the DeCLIP zoo offline, and maps back over the
image (localization metrics against masks: test_evaluation.py)."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipforensics.cli import main
from clipforensics.demo import QUICK, write_inputs
from clipforensics.inference.provenance import read_rows

from .conftest import expected


def _localize(reference: Path, *arguments: str) -> int:
    return main(["localize", *arguments, "--model", str(reference / "declip-conv-4.pth"), "--precision", "fp32"])


def _rows(out: Path) -> list[dict]:
    return list(read_rows(out / "results.jsonl"))


def test_localize_writes_masks_and_overlays_mirroring_the_inputs_and_a_row_for_each(reference, sample_faces,
                                                                                     tmp_path):
    inputs = tmp_path / "in"
    for video in ("FF/DF/000_003", "FF/real/000"):  # both hold a 000.png
        (inputs / video).mkdir(parents=True)
        shutil.copy(sample_faces / video / "000.png", inputs / video / "000.png")
    (inputs / "FF" / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"

    status = _localize(reference, str(inputs), "--output-dir", str(out))

    rows = _rows(out)
    assert status == 1 and len(rows) == 3
    broken = [r for r in rows if r["error"]]
    assert [Path(r["path"]).name for r in broken] == ["broken.png"] and broken[0]["mask"] is None
    for row in (r for r in rows if not r["error"]):
        relative = Path(row["path"]).relative_to(inputs / "FF").with_suffix("")
        assert row["mask"] == f"{out / relative}.mask.png" and row["overlay"] == f"{out / relative}.overlay.png"
        mask = np.asarray(Image.open(row["mask"]))
        assert mask.dtype == np.uint8 and mask.shape == (256, 256)
        assert Image.open(row["overlay"]).size == (256, 256) and 0 < row["p_fake"] < 1
        assert row["p_fake"] == pytest.approx(mask.mean() / 255, abs=2e-3)


def test_maps_from_the_files_match_the_authors_at_8_bits(reference, sample_faces, tmp_path):
    truth = expected(reference, "declip-conv-4.expected.json")
    maps = np.load(reference / "declip-conv-4.maps.npy")
    first = sample_faces / truth["files"][0]

    _localize(reference, str(first), "--output-dir", str(tmp_path))

    written = np.asarray(Image.open(_rows(tmp_path)[0]["mask"])) / 255
    assert np.abs(written - maps[0]).max() <= 0.5 / 255 + 1e-6


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory) -> dict[str, Path]:
    return {path.name: path for path in write_inputs(tmp_path_factory.mktemp("demo"), QUICK)}


def test_with_faces_auto_the_face_map_is_warped_back_onto_the_whole_photo(reference, demo_inputs, tmp_path):
    photo = demo_inputs["astronaut.png"]

    status = _localize(reference, str(photo), "--faces", "auto", "--output-dir", str(tmp_path))

    row = _rows(tmp_path)[0]
    mask = np.asarray(Image.open(row["mask"]))
    assert status == 0 and mask.shape == np.asarray(Image.open(photo)).shape[:2]
    assert mask[256:].max() == 0 and mask[:, :128].max() == 0, "map away from the face (box 179,83-266,170)"
    assert mask[83:170, 179:266].min() > 0, "no map on the face"


def test_a_video_gets_a_mask_per_sampled_frame_and_an_overlay_video(reference, demo_inputs, tmp_path, capsys):
    status = _localize(reference, str(demo_inputs["astronaut-walk.mp4"]), "--frames", "3", "--output-dir",
                       str(tmp_path))

    row = _rows(tmp_path)[0]
    progress = capsys.readouterr().err
    assert status == 0 and row["kind"] == "video"
    assert re.search(r"localize: .*\| \d/3 \[.*frame/s", progress) and "detect:" not in progress, progress
    masks = sorted(Path(row["mask"]).glob("*.png"))
    assert len(masks) == 3 and np.asarray(Image.open(masks[0])).shape == (360, 640)
    assert row["overlay"].endswith(".overlay.mp4") and Path(row["overlay"]).stat().st_size > 0


def test_a_declip_zoo_name_offline_fails_at_once_naming_the_address(monkeypatch, tmp_path, capsys, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("clipforensics.hub.zoo.CACHE", tmp_path)

    status = main(["localize", str(tmp_path), "--model", "declip-l14-lama", "--output-dir", str(tmp_path / "o")])

    error = capsys.readouterr().err
    assert status == 1 and no_network == ["storage.googleapis.com"], "tried once, no retries"
    assert "https://storage.googleapis.com/bitdefender_ml_artifacts/declip/backbone_VIT/ViT_layer20_conv-20_lama.pth" \
        in error and "--model PATH" in error
    assert not list(tmp_path.glob("*.part")), "a failed download left a partial file"


def test_localize_with_a_detector_without_a_decoder_is_a_usage_error(reference, sample_faces, tmp_path, capsys):
    status = main(["localize", str(sample_faces), "--model", str(reference / "gend-hf"), "--output-dir",
                   str(tmp_path)])
    assert status == 2 and "has no decoder" in capsys.readouterr().err


def test_a_map_goes_back_over_the_whole_image_when_squashed_and_over_the_centre_crop_otherwise():
    from clipforensics.transforms import Preprocessing, map_to_image

    ones = np.ones((16, 16), np.float32)

    squashed = map_to_image(ones, Preprocessing(mode="squash", interpolation="bilinear"), (200, 300))
    cropped = map_to_image(ones, Preprocessing(mode="crop"), (200, 300))

    assert squashed.shape == cropped.shape == (200, 300) and squashed.min() == 1.0
    assert cropped[:, 50:250].min() == 1.0 and cropped[:, :50].max() == 0.0 and cropped[:, 250:].max() == 0.0
