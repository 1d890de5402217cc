"""fp32 is the reference; bf16 keeps p_fake within 0.01 of it; auto picks bf16 only where it is fast."""

import numpy as np
import pytest
import torch

import clipforensics
from clipforensics.inference import runtime

from .conftest import expected


def test_bf16_keeps_p_fake_within_a_hundredth_of_fp32_on_the_sample_faces(reference, sample_faces):
    files = [sample_faces / name for name in expected(reference, "gend-hf.expected.json")["files"]]
    fp32 = clipforensics.load(reference / "gend-hf", precision="fp32").predict(files, faces="none")
    bf16 = clipforensics.load(reference / "gend-hf", precision="bf16").predict(files, faces="none")

    difference = np.abs(np.array([r.p_fake for r in bf16]) - np.array([r.p_fake for r in fp32]))

    assert difference.max() < 0.01
    assert difference.max() > 0  # bf16 really ran


@pytest.mark.parametrize(("fast_bf16", "expected_precision"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_the_bf16_matrix_units(monkeypatch, fast_bf16, expected_precision):
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: fast_bf16)

    assert runtime.resolve_precision("auto", torch.device("cpu")) == expected_precision


def test_explicit_precision_is_kept_and_unknown_is_refused():
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ValueError, match="auto.*fp32.*bf16"):
        runtime.resolve_precision("fp16", torch.device("cpu"))


def test_asking_for_cuda_without_a_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    with pytest.raises(ValueError, match="--device cpu"):
        runtime.resolve_device("cuda")
