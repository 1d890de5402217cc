"""Explanations: a map per face of where the detector looked for the score its call rests on (``s = z_fake - z_real``
where the head says fake, ``-s`` where it says real), for every tower family; the scores untouched; the maps placed
back on the frame through the alignment; and checked for faithfulness on a detector trained here on a task whose
evidence is known (``tests.explained``)."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr

from clipforensics.cli import main
from clipforensics.evaluation.faithfulness import area_between, deletion_curve, most_relevant_first, random_curve
from clipforensics.hub.checkpoints import save_model
from clipforensics.inference.predictor import Predictor
from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.explanation import explain
from clipforensics.models.model import ForensicsModel, ModelConfig
from clipforensics.models.towers.attention import AttentionRecorder
from clipforensics.models.tuning import apply_tuning
from clipforensics.inference.provenance import read_rows

from .explained import SQUARE_BACKBONE, crops, trained_detector
from .test_dinov3 import TINY_DINOV3
from .test_pe import TINY_PE

FAMILIES = {"clip": TINY_BACKBONE, "dinov3": TINY_DINOV3, "pe": TINY_PE}


def _model(family: str, tuning: str = "full") -> ForensicsModel:
    torch.manual_seed(0)
    model = ForensicsModel(ModelConfig(FAMILIES[family]))
    apply_tuning(model, tuning)
    return model.eval()


def _pixels(family: str, count: int = 3) -> torch.Tensor:
    size = FAMILIES[family].image_size
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def detector() -> ForensicsModel:
    return trained_detector()


@pytest.mark.parametrize("method", ["rollout", "gradcam"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_map_has_one_value_per_patch_non_negative_with_max_1(family, method):
    model = _model(family)

    maps = explain(model, _pixels(family), method).maps

    grid = FAMILIES[family].grid
    assert maps.shape == (3, grid, grid) and maps.dtype == torch.float32
    assert maps.min() >= 0 and torch.equal(maps.amax(dim=(1, 2)), torch.ones(3))


def test_clip_maps_a_14_by_14_grid_at_b16_and_224_pixels():
    assert explain(_model("clip"), _pixels("clip", 1)).maps.shape == (1, 14, 14)


@pytest.mark.parametrize("family, attentions", [("clip", 2), ("dinov3", 2), ("pe", 3)])
def test_every_attention_on_the_path_is_recorded_pe_s_pooling_last(family, attentions):
    model, recorder = _model(family), AttentionRecorder()
    tokens = 1 + FAMILIES[family].registers + FAMILIES[family].grid ** 2

    with torch.no_grad(), model.backbone.recording(recorder):
        model.backbone(_pixels(family, 1))

    assert [tuple(a.shape[2:]) for a in recorder.probabilities][-1] == ((1, tokens) if family == "pe" else
                                                                        (tokens, tokens))
    assert len(recorder.probabilities) == attentions


@pytest.mark.parametrize("tuning", ["layernorm", "lora", "linear-probe", "full"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_explaining_leaves_the_logits_bit_for_bit(family, tuning):
    model, pixels = _model(family, tuning), _pixels(family)
    with torch.inference_mode():
        plain = model(pixels).logits

    assert torch.equal(explain(model, pixels).logits, plain)
    assert torch.equal(model(pixels).logits.detach(), plain)  # the tower is back on its own attention


@pytest.mark.parametrize("family", list(FAMILIES))
def test_grad_cam_leaves_the_logits_bit_for_bit_though_only_the_last_block_is_differentiated(family):
    model, pixels = _model(family), _pixels(family)
    with torch.inference_mode():
        plain = model(pixels).logits

    assert torch.equal(explain(model, pixels, "gradcam").logits, plain)


def test_explaining_in_bf16_leaves_the_logits_as_autocast_gives_them():
    model, pixels = _model("clip"), _pixels("clip")
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        plain = model(pixels).logits

    with torch.autocast("cpu", torch.bfloat16):
        explained = explain(model, pixels)

    assert torch.equal(explained.logits, plain) and explained.maps.dtype == torch.float32


def test_a_localizer_has_no_score_to_explain():
    localizer = ForensicsModel(ModelConfig(TINY_BACKBONE, head=None, decoder="conv-4", layer=1))

    with pytest.raises(Exception, match="no head"):
        explain(localizer, _pixels("clip", 1))


def test_detect_explain_keeps_p_fake_names_each_face_s_map_and_draws_it(tiny_detector, face_crop, tmp_path):
    model = save_model(tiny_detector, tmp_path / "model")
    plain, explained = tmp_path / "plain.jsonl", tmp_path / "explained.jsonl"
    common = [str(face_crop), "--model", str(model), "--faces", "none", "--precision", "fp32"]

    assert main(["detect", *common, "--output", str(plain)]) == 0
    assert main(["detect", *common, "--output", str(explained), "--explain", str(tmp_path / "why"),
                 "--annotate", str(tmp_path / "drawn")]) == 0

    (before,), (after,) = (list(read_rows(path)) for path in (plain, explained))
    assert after["p_fake"] == pytest.approx(before["p_fake"], abs=1e-6)
    face = after["detail"][0]["faces"][0]
    assert "explanation" not in before["detail"][0]["faces"][0] and "explains" not in before["detail"][0]["faces"][0]
    assert Image.open(face["explanation"]).size == (224, 224)
    assert face["explains"] == ("fake" if after["detail"][0]["faces"][0]["p_fake"] >= 0.5 else "real")
    assert list((tmp_path / "drawn").iterdir())


def test_a_map_lands_on_the_face_of_a_rotated_offset_frame(tiny_detector, face_crop):
    face = Image.open(face_crop).convert("RGB")
    frame = Image.new("RGB", (900, 700), (90, 110, 130))
    frame.paste(face.rotate(20, expand=True, fillcolor=(90, 110, 130)), (480, 260))
    predictor = Predictor(tiny_detector, precision="fp32")

    result = predictor.predict(np.asarray(frame), explain=True)[0]

    placed = result.explanations[0]
    x0, y0, x1, y1 = result.frames[0].faces[0].box
    ys, xs = np.nonzero(placed)
    centre = np.average(ys, weights=placed[ys, xs]), np.average(xs, weights=placed[ys, xs])
    assert placed.shape == (700, 900) and placed.max() <= 1.0
    assert y0 <= centre[0] <= y1 and x0 <= centre[1] <= x1
    width = x1 - x0
    assert xs.min() >= x0 - width and xs.max() <= x1 + width  # nothing lands away from the face
    assert result.plot(explain=True).shape == (700, 900, 3)


def test_each_map_explains_the_score_the_head_s_call_rests_on(detector):
    held_out = crops(12, seed=7)
    with torch.inference_mode():
        logits = detector(held_out.pixels).logits
    s = logits[:, detector.config.fake_index] - logits[:, detector.config.real_index]

    explained = explain(detector, held_out.pixels)

    assert torch.equal(explained.toward_fake, s >= 0)
    assert explained.toward_fake.any() and not explained.toward_fake.all()


def test_the_rollout_beats_random_deletion_on_every_crop_fakes_and_reals_alike(detector):
    held_out = crops(12, seed=7)
    maps = explain(detector, held_out.pixels).maps.numpy()
    rng = np.random.default_rng(0)

    areas = np.array([area_between(random_curve(detector, pixels, SQUARE_BACKBONE.patch_size, rng),
                                   deletion_curve(detector, pixels, most_relevant_first(relevance),
                                                  SQUARE_BACKBONE.patch_size))
                      for pixels, relevance in zip(held_out.pixels, maps)])

    assert (areas > 0).all(), areas


def test_a_deletion_curve_follows_the_score_of_the_intact_crop_s_call(detector):
    """For a crop the head calls real the curve is of ``-s``: deleting its evidence for real must lower it."""
    held_out = crops(12, seed=7)
    order = np.arange(SQUARE_BACKBONE.grid ** 2)
    with torch.inference_mode():
        logits = detector(held_out.pixels).logits
    s = (logits[:, detector.config.fake_index] - logits[:, detector.config.real_index]).numpy()

    starts = [deletion_curve(detector, pixels, order, SQUARE_BACKBONE.patch_size)[0] for pixels in held_out.pixels]

    np.testing.assert_allclose(starts, np.abs(s), rtol=1e-5, atol=1e-5)


def test_the_rollout_s_mass_falls_mostly_inside_the_blended_square(detector):
    held_out = crops(12, seed=7)
    fakes = held_out.labels.numpy() == 1
    maps = explain(detector, held_out.pixels[fakes]).maps.numpy()
    patch = SQUARE_BACKBONE.patch_size

    on_pixels = np.kron(maps, np.ones((1, patch, patch)))
    inside = (on_pixels * held_out.regions[fakes]).sum(axis=(1, 2)) / on_pixels.sum(axis=(1, 2))

    area = held_out.regions[fakes].mean()
    assert inside.mean() > 0.4 > 6 * area  # the square is 6 % of the crop


def test_randomising_the_head_changes_the_map(detector):
    """Adebayo et al. 2018: a map that survives randomising the weights it explains explains nothing."""
    held_out = crops(12, seed=7)
    randomised = copy.deepcopy(detector)
    torch.nn.init.normal_(randomised.head.weight, generator=torch.Generator().manual_seed(3))

    trained, random = (explain(model, held_out.pixels).maps.numpy() for model in (detector, randomised))

    correlations = [spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(trained, random)]
    assert np.median(correlations) < 0.5
