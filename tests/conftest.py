"""Shared fixtures: tiny random detectors, and the authors' reference outputs from ../shared when present."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from pathlib import Path

import pytest
import torch

from clipforensics.backbones import TINY_BACKBONE
from clipforensics.models.detector import ClipDetector, create_detector

os.environ["HF_HUB_OFFLINE"] = "1"

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


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never download: any connection beyond loopback fails at once."""
    connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not _is_loopback(host):
            raise OSError(f"tests must not reach the network (tried {address})")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
