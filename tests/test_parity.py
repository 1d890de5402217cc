"""Parity with the authors' code on every clone: the reference set shipped in tests/fixtures/reference (written by
deepfake-detection's and GenD's own code, with their outputs on 8 public-domain crops) is reproduced through the
project's own path, from the image files to p_fake."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipforensics
from clipforensics.cli import main
from clipforensics.transforms import Preprocessing, preprocess
from clipforensics.inference.provenance import read_rows

from .conftest import SHIPPED

CHECKPOINTS = [("lnclip-lightning.ckpt", "lnclip-lightning.expected.json"), ("gend-hf", "gend-hf.expected.json")]


def _truth(name: str) -> dict:
    return json.loads((SHIPPED / name).read_text())


def _inputs(truth: dict) -> list[Path]:
    return [SHIPPED / "inputs" / name for name in truth["files"]]


@pytest.mark.parametrize(("checkpoint", "outputs"), CHECKPOINTS)
def test_p_fake_from_the_image_files_matches_the_authors_code(checkpoint, outputs):
    truth = _truth(outputs)
    model = clipforensics.load(SHIPPED / checkpoint, precision="fp32")

    results = model.predict(_inputs(truth), faces="none")

    assert [r.error for r in results] == [None] * len(truth["files"])
    np.testing.assert_allclose([r.p_fake for r in results], truth["p_fake"], atol=1e-4, rtol=0)


@pytest.mark.parametrize(("checkpoint", "outputs"), CHECKPOINTS)
def test_logits_from_the_image_files_match_the_authors_code(checkpoint, outputs):
    truth = _truth(outputs)
    model = clipforensics.load(SHIPPED / checkpoint, precision="fp32")

    logits = model.predict_tensor(preprocess([Image.open(path) for path in _inputs(truth)], model.preprocessing))

    np.testing.assert_allclose(logits.numpy(), truth["logits"], atol=1e-5, rtol=0)


def test_detect_writes_the_authors_p_fake(tmp_path):
    truth = _truth("gend-hf.expected.json")
    rows = tmp_path / "rows.jsonl"

    status = main(["detect", *map(str, _inputs(truth)), "--model", str(SHIPPED / "gend-hf"), "--faces", "none",
                   "--precision", "fp32", "--output", str(rows)])

    p_fake = [row["p_fake"] for row in read_rows(rows)]
    assert status == 0
    np.testing.assert_allclose(p_fake, truth["p_fake"], atol=1e-4, rtol=0)


def test_predict_tensor_on_the_authors_preprocessed_inputs_gives_their_logits():
    truth = _truth("lnclip-lightning.expected.json")
    model = clipforensics.load(SHIPPED / "lnclip-lightning.ckpt", precision="fp32")

    logits = model.predict_tensor(torch.from_numpy(np.load(SHIPPED / "lnclip-input.npy")))

    np.testing.assert_allclose(logits.numpy(), truth["input_npy_first4_logits"], atol=1e-5, rtol=0)


def test_preprocessing_gives_the_authors_inputs():
    truth = _truth("lnclip-lightning.expected.json")
    images = [Image.open(path) for path in _inputs(truth)[:4]]

    pixels = preprocess(images, Preprocessing())

    np.testing.assert_allclose(pixels.numpy(), np.load(SHIPPED / "lnclip-input.npy"), atol=1e-5, rtol=0)
