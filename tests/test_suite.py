"""The suite's own guarantees: a clone without the workplace's ../shared runs every check but DeCLIP's parity and
the sample faces' (and says so once, by name), and no test reaches the network, not even a name server."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ON_EVERY_CLONE = ["tests/test_dinov3.py::test_gend_dinov3_reproduces_gends_logits_and_p_fake",
                  "tests/test_pe.py::test_gend_pe_reproduces_gends_logits_and_p_fake",
                  "tests/test_parity.py::test_p_fake_from_the_image_files_matches_the_authors_code",
                  "tests/test_localizer.py::test_a_detector_with_a_decoder_returns_p_fake_and_a_map_from_one_call",
                  "tests/test_preprocess.py::test_an_input_is_never_written_over"]
DECLIP_PARITY = "tests/test_localizer.py::test_the_declip_checkpoint_reproduces_the_authors_maps_from_their_inputs"


def test_a_clone_without_shared_checks_gends_backbones_and_face_crops_and_names_what_it_left_out(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *ON_EVERY_CLONE,
                           DECLIP_PARITY], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CLIPFORENSICS_TEST_SHARED": str(tmp_path / "no-shared")})

    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout
    assert summary.startswith("6 passed") and "skipped" not in summary  # test_parity's is run for 2 checkpoints
    [left_out] = [line for line in done.stdout.splitlines() if "left out" in line]
    assert left_out.startswith("1 checks") and "DeCLIP's checkpoints" in left_out and "test_localizer.py" in left_out


@pytest.mark.parametrize("resolve", [lambda: socket.getaddrinfo("huggingface.co", 443),
                                     lambda: socket.gethostbyname("huggingface.co"),
                                     lambda: socket.create_connection(("huggingface.co", 443), timeout=1)])
def test_no_test_resolves_a_host_name(resolve, no_network):
    with pytest.raises(OSError, match="tests must not reach the network"):
        resolve()

    assert no_network == ["huggingface.co"]


def test_loopback_stays_reachable():
    assert socket.getaddrinfo("localhost", 80) and socket.getaddrinfo("127.0.0.1", 80)


def test_the_package_holds_no_test_hook():
    sources = {path: path.read_text() for path in (ROOT / "clipforensics").rglob("*.py")}

    assert [path for path, text in sources.items() if "CLIPFORENSICS_TEST" in text] == []


def test_no_test_waits_a_fixed_time_or_asserts_how_long_something_took():
    clock = re.compile(r"assert[^\n]*time\.(monotonic|perf_counter|time)\(\) -|wait_for_timeout\(")
    tests = {path.name: path.read_text() for path in Path(__file__).parent.glob("test_*.py")}

    assert [name for name, text in tests.items() if clock.search(text)] == []
