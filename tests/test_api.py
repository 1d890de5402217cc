"""The Python API: load by path or zoo name, predict in order, results as rows."""

import json

import numpy as np
import torch
import pytest

import clipforensics
from clipforensics import Predictor, Result
from clipforensics.errors import DownloadError
from clipforensics.hub.zoo import ZOO


def test_threshold_decides_the_label(tiny_detector):
    image = np.full((224, 224, 3), 128, dtype=np.uint8)
    [scored] = Predictor(tiny_detector, precision="fp32").predict([image], faces="none")

    below = Predictor(tiny_detector, precision="fp32", threshold=scored.p_fake + 1e-6).predict([image], faces="none")[0]
    at = Predictor(tiny_detector, precision="fp32", threshold=scored.p_fake).predict([image], faces="none")[0]

    assert (below.label, at.label) == ("real", "fake")


def test_results_keep_input_order_across_batches(tiny_detector):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(7)]
    one_batch = Predictor(tiny_detector, precision="fp32", batch_size=7).predict(images, faces="none")

    many_batches = Predictor(tiny_detector, precision="fp32", batch_size=2).predict(images, faces="none")

    np.testing.assert_allclose([r.p_fake for r in many_batches], [r.p_fake for r in one_batch], atol=1e-6)


def test_a_result_is_a_json_row():
    result = Result("a/b.png", p_fake=0.25, label="real")

    row = json.loads(result.to_json())
    assert {key: row[key] for key in ("path", "p_fake", "label", "error")} == {
        "path": "a/b.png", "p_fake": 0.25, "label": "real", "error": None,
    }
    assert result.ok and not Result("x", error="broken").ok


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_names_fail_offline_naming_the_source_and_the_local_path_way(name, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))

    with pytest.raises(DownloadError) as error:
        clipforensics.load(name)

    message = str(error.value)
    assert ZOO[name].repo_id in message and ZOO[name].files[0] in message
    assert "--model PATH" in message


@pytest.mark.parametrize("name", ["gend-clip-l14", "declip-l14-lama"])
def test_zoo_names_fail_at_once_when_the_network_is_unreachable(name, monkeypatch, tmp_path, no_network):
    import huggingface_hub.constants

    from clipforensics.hub import zoo

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the no_network fixture blocks every connection
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(zoo, "CACHE", tmp_path / "cache")

    with pytest.raises(DownloadError) as error:
        clipforensics.load(name)

    assert len(no_network) == 1, f"the download was tried again: {no_network}"
    message = str(error.value)
    assert ZOO[name].repo_id in message and "cannot be reached" in message and "--model PATH" in message


@pytest.mark.parametrize(("typo", "meant"), [("gend-clip-l41", "gend-clip-l14"), ("declip-lama", "declip-l14-lama")])
def test_a_misspelt_zoo_name_gets_the_closest_names(typo, meant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(clipforensics.errors.CheckpointError, match=f"did you mean {meant}"):
        clipforensics.load(typo)


def test_an_image_result_plots_its_faces_boxed_and_saves_as_a_picture(tiny_detector, tmp_path):
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    [result] = Predictor(tiny_detector, precision="fp32").predict([photo])

    picture = result.plot()
    saved = result.save(tmp_path / "verdict.png")

    assert picture.shape == data.astronaut().shape and picture.dtype == np.uint8
    x0, y0, x1, y1 = (int(v) for v in result.frames[0].faces[0].box)
    assert not np.array_equal(picture[y0 - 2 : y1 + 2, x0 - 2 : x1 + 2], data.astronaut()[y0 - 2 : y1 + 2, x0 - 2 : x1 + 2])
    assert np.array_equal(picture[-20:, :20], data.astronaut()[-20:, :20])  # away from the face: untouched
    assert np.array_equal(np.asarray(Image.open(saved)), picture)


def test_the_plot_of_an_image_without_a_face_says_why_nothing_is_boxed(tiny_detector, tmp_path):
    from PIL import Image
    from skimage import data

    from clipforensics.colours import UNDECIDED

    cat = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(cat)
    [result] = Predictor(tiny_detector, precision="fp32").predict([cat])

    picture = result.plot()

    assert result.error.startswith("no face found in image (searched 451x300 at full size with mtcnn")
    assert (picture[:10, :40] == UNDECIDED).all(axis=-1).any()  # a grey band with the reason in the corner
    assert np.array_equal(picture[-40:], data.chelsea()[-40:])


def test_the_plot_of_a_face_crop_shows_its_p_fake_in_the_corner(tiny_detector, tmp_path):
    from clipforensics.colours import FAKE, REAL

    crop = np.full((96, 96, 3), 90, dtype=np.uint8)
    [result] = Predictor(tiny_detector, precision="fp32").predict([crop], faces="none")

    picture = result.plot()

    colour = FAKE if result.p_fake >= 0.5 else REAL
    assert (picture[:10, :40] == colour).all(axis=-1).any()


def test_saving_a_plot_over_its_own_input_is_refused(tiny_detector, tmp_path):
    from PIL import Image

    photo = tmp_path / "crop.png"
    Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8)).save(photo)
    [result] = Predictor(tiny_detector, precision="fp32").predict([photo], faces="none")

    with pytest.raises(ValueError, match="is the input itself"):
        result.save(photo)
    assert np.asarray(Image.open(photo)).max() == 90


def test_a_map_result_plots_the_heatmap_over_the_image():
    from clipforensics.models.backbones import TINY_BACKBONE
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    image = np.full((120, 160, 3), 128, dtype=np.uint8)
    localizer = Predictor(create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="linear", layer=1)),
                          precision="fp32")
    [result] = localizer.predict([image])

    picture = result.plot()

    assert result.map.shape == (120, 160) and picture.shape == (120, 160, 3)
    assert not np.array_equal(picture, image)  # the map is drawn; there are no boxes (the image was the input)


def test_a_video_result_plots_p_fake_over_time():
    from clipforensics.inference.results import FaceResult, FrameResult

    result = Result("clip.mp4", p_fake=0.4, kind="video", frames=[
        FrameResult(0, 0.0, [FaceResult([0, 0, 9, 9], 0.9, 0.2)]),
        FrameResult(5, 0.2, []),
        FrameResult(10, 0.4, [FaceResult([0, 0, 9, 9], 0.9, 0.6)]),
    ])

    picture = result.plot()

    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[1] > picture.shape[0]
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 10  # a drawn chart, not a blank canvas


def test_a_loaded_model_holds_the_checkpoints_tensors_themselves(tiny_detector, tmp_path):
    from clipforensics.hub.checkpoints import save_model
    from clipforensics.hub.files import read_safetensors
    from clipforensics.models.factory import create_model

    folder = save_model(tiny_detector, tmp_path / "saved")
    state = read_safetensors(folder / "model.safetensors")

    model = create_model(tiny_detector.config, dict(state))  # create_model empties the dict it reads

    assert all(parameter.device.type == "cpu" for parameter in model.parameters())
    assert model.head.weight.data_ptr() == state["head.weight"].data_ptr()  # assigned, not copied
    assert all(torch.equal(model.state_dict()[key], tensor) for key, tensor in state.items())
