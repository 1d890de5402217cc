"""Shared fixtures: tiny random detectors, the reference sets, and the no-network guard.

The reference outputs shipped in tests/fixtures/reference (GenD's CLIP, DINOv3 and PE layouts, the Lightning
layout) are checked on every clone. The checks that need the workplace's ../shared (DeCLIP's checkpoints, 20 MB
and more even at tiny widths, and the sample faces, which their terms keep out of the project) are left out
when it is absent, and the run says so once, with how many and why, instead of skipping each.
``CLIPFORENSICS_TEST_SHARED`` names another folder in its place (a missing one: a clone without it)."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.models.factory import create_model
from clipforensics.models.model import ForensicsModel, ModelConfig

os.environ["HF_HUB_OFFLINE"] = "1"

SHIPPED = Path(__file__).resolve().parent / "fixtures" / "reference"
"""The reference set that ships with the project."""
SHARED = Path(os.environ.get("CLIPFORENSICS_TEST_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
REFERENCE = SHARED / "fixtures" / "reference-checkpoints"
SAMPLE_FACES = SHARED / "samples" / "faces"


SHARED_FIXTURES = {"reference", "sample_faces"}
_left_out: list[str] = []


def pytest_collection_modifyitems(config, items) -> None:
    if SHARED.is_dir():
        return
    needing = [item for item in items if SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))]
    if needing:
        _left_out.extend(item.nodeid for item in needing)
        config.hook.pytest_deselected(items=needing)
        items[:] = [item for item in items if item not in needing]


def pytest_terminal_summary(terminalreporter) -> None:
    if _left_out:
        files = sorted({nodeid.split("::")[0] for nodeid in _left_out})
        terminalreporter.write_line(
            f"{len(_left_out)} checks against the workplace's reference files were left out: {SHARED} is absent "
            f"(DeCLIP's checkpoints and the sample faces live there; the parity tests on {SHIPPED} ran). "
            f"In: {', '.join(files)}")


@pytest.fixture(scope="session")
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference checkpoints not found at {REFERENCE} (../shared is absent)")
    return REFERENCE


@pytest.fixture(scope="session")
def backbones() -> Path:
    """GenD's DINOv3 and PE checkpoints with their outputs on ``input.npy`` (see its README)."""
    return SHIPPED / "backbones"


@pytest.fixture(scope="session")
def face_crop() -> Path:
    """An aligned face crop of a public-domain photo, on every clone (for checks that need a face, not the
    sample faces' reference outputs)."""
    return SHIPPED / "inputs" / "PD" / "real" / "astronaut" / "000.png"


@pytest.fixture(scope="session")
def sample_faces() -> Path:
    if not SAMPLE_FACES.is_dir():
        pytest.skip(f"sample faces not found at {SAMPLE_FACES} (../shared is absent)")
    return SAMPLE_FACES


def expected(reference: Path, name: str) -> dict:
    return json.loads((reference / name).read_text())


def assert_reproduces_gend(backbones: Path, name: str) -> None:
    """GenD's folder ``name`` loaded here gives GenD's logits (1e-5) and p_fake (1e-4) on the shared input."""
    import clipforensics

    truth = expected(backbones, f"{name}.expected.json")
    detector = clipforensics.load(backbones / name, precision="fp32")

    logits = detector.predict_tensor(torch.from_numpy(np.load(backbones / "input.npy")))

    np.testing.assert_allclose(logits.numpy(), truth["logits"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits.softmax(1)[:, 1].numpy(), truth["p_fake"], atol=1e-4, rtol=0)


@pytest.fixture
def tiny_detector() -> ForensicsModel:
    torch.manual_seed(0)
    return create_model(ModelConfig(TINY_BACKBONE)).eval()


@pytest.fixture(scope="session")
def real_faces(sample_faces, tmp_path_factory) -> Path:
    """The sample faces as a real-only dataset (``S/real/v<N>/<frame>.png``), each with the 68 landmarks
    dlib finds beside it (``_lm68.npy``), as self-blending needs."""
    root = tmp_path_factory.mktemp("reals") / "S"
    from clipforensics.faces.detection import DlibHogDetector
    from clipforensics.media import load_image

    detector = DlibHogDetector(upsample=1, max_side=None)
    for index, path in enumerate(sorted(sample_faces.rglob("*.png"))):
        image = np.asarray(load_image(path))
        faces = detector.detect(image)
        if faces:
            target = root / "real" / f"v{index // 4}" / f"{index % 4:03d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            np.save(target.with_name(target.stem + "_lm68.npy"), faces[0].landmarks68)
    return root


@pytest.fixture(scope="session")
def flat_manifest(sample_faces, tmp_path_factory) -> Path:
    """The sample faces (8 videos of 4 frames) copied into one flat folder as ``frame<NN>.png``, their videos
    named only by ``manifest.csv`` (``path,label,dataset,source,video``, videos ``clip<N>``), the rows of
    one video not next to each other: frame f of every video, then frame f + 1."""
    folder = tmp_path_factory.mktemp("flat")
    frames = sorted(sample_faces.rglob("*.png"))
    rows = []
    for frame_index in range(4):
        for video in range(len(frames) // 4):
            source = frames[4 * video + frame_index]
            name = f"frame{len(rows):02d}.png"
            shutil.copy(source, folder / name)
            dataset, kind = source.parts[-4:-2]
            rows.append({"path": name, "label": 0 if "real" in kind.lower() else 1, "dataset": dataset,
                         "source": kind, "video": f"clip{video}"})
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(autouse=True)
def no_network(monkeypatch) -> list:
    """Tests never download: resolving a name or connecting beyond loopback fails at once. Returns what was
    refused, in order (a host name or an address), for a test to count the tries."""
    refused: list = []
    connect, getaddrinfo, gethostbyname = socket.socket.connect, socket.getaddrinfo, socket.gethostbyname

    def refuse(target) -> OSError:
        refused.append(target)
        return OSError(f"tests must not reach the network (tried {target})")

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not _is_loopback(host):
            raise refuse(address)
        return connect(sock, address)

    def guarded_getaddrinfo(host, *arguments, **options):
        if _is_name(host):
            raise refuse(host)
        return getaddrinfo(host, *arguments, **options)

    def guarded_gethostbyname(host):
        if _is_name(host):
            raise refuse(host)
        return gethostbyname(host)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", guarded_gethostbyname)
    return refused


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _is_name(host: str | bytes | None) -> bool:
    """A host that only a name server can resolve: neither an address nor this machine's own name for itself."""
    host = host.decode() if isinstance(host, bytes) else host
    if not host or host == "localhost":
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


@pytest.fixture(autouse=True)
def isolated_environment():
    """What a test leaves in the environment stays with it: Lightning sets MASTER_PORT and the like in the
    process that trains, which would send a later test's launched processes to a port already taken."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
