"""The Python API: load by path or zoo name, predict in order, results as rows."""

import json

import numpy as np
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
