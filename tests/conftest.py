"""Shared fixtures: tiny random detectors, and the authors' reference outputs from ../shared when present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from clipforensics.backbones import TINY_BACKBONE
from clipforensics.models.detector import ClipDetector, create_detector

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "fixtures" / "reference-checkpoints"
SAMPLE_FACES = SHARED / "samples" / "faces"


@pytest.fixture(scope="session")
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference checkpoints not found at {REFERENCE} (../shared is absent)")
    return REFERENCE


@pytest.fixture(scope="session")
def sample_faces() -> Path:
    if not SAMPLE_FACES.is_dir():
        pytest.skip(f"sample faces not found at {SAMPLE_FACES} (../shared is absent)")
    return SAMPLE_FACES


def expected(reference: Path, name: str) -> dict:
    return json.loads((reference / name).read_text())


@pytest.fixture
def tiny_detector() -> ClipDetector:
    torch.manual_seed(0)
    return create_detector(TINY_BACKBONE).eval()
