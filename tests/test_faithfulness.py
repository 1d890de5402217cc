"""The authors' checkpoints, loaded here, give what the authors' code computed."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

import clipforensics
from clipforensics.transforms import Preprocessing, preprocess

from .conftest import expected

CHECKPOINTS = [
    ("lnclip-lightning.ckpt", "lnclip-lightning.expected.json"),
    ("gend-hf", "gend-hf.expected.json"),
]


@pytest.mark.parametrize(("checkpoint", "outputs"), CHECKPOINTS)
def test_p_fake_on_all_sample_faces_matches_the_reference(reference, sample_faces, checkpoint, outputs):
    truth = expected(reference, outputs)
    detector = clipforensics.load(reference / checkpoint, precision="fp32")

    results = detector.predict([sample_faces / name for name in truth["files"]], faces="none")

    assert [r.error for r in results] == [None] * len(truth["files"])
    np.testing.assert_allclose([r.p_fake for r in results], truth["p_fake"], atol=1e-4, rtol=0)


@pytest.mark.parametrize(("checkpoint", "outputs"), CHECKPOINTS)
def test_logits_on_all_sample_faces_match_the_reference(reference, sample_faces, checkpoint, outputs):
    truth = expected(reference, outputs)
    detector = clipforensics.load(reference / checkpoint, precision="fp32")
    images = [Image.open(sample_faces / name) for name in truth["files"]]

    logits = detector.predict_tensor(preprocess(images, detector.config.preprocessing))

    np.testing.assert_allclose(logits.numpy(), truth["logits"], atol=1e-4, rtol=0)


def test_predict_tensor_reproduces_the_reference_logits_on_its_preprocessed_inputs(reference):
    truth = expected(reference, "lnclip-lightning.expected.json")
    detector = clipforensics.load(reference / "lnclip-lightning.ckpt", precision="fp32")

    logits = detector.predict_tensor(torch.from_numpy(np.load(reference / "lnclip-input.npy")))

    np.testing.assert_allclose(logits.numpy(), truth["input_npy_first4_logits"], atol=1e-5, rtol=0)


def test_preprocessing_reproduces_the_reference_inputs(reference, sample_faces):
    truth = expected(reference, "lnclip-lightning.expected.json")
    images = [Image.open(sample_faces / name) for name in truth["files"][:4]]

    pixels = preprocess(images, Preprocessing())

    np.testing.assert_allclose(pixels.numpy(), np.load(reference / "lnclip-input.npy"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(256, 256), (300, 200), (171, 389), (224, 224), (97, 64)])
def test_preprocessing_equals_transformers_clip_image_processor(size):
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    processor = CLIPImageProcessorPil()

    ours = preprocess([image], Preprocessing())
    theirs = processor(images=image, return_tensors="pt")["pixel_values"]

    assert ours.shape == theirs.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5, rtol=0)
