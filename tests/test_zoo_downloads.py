"""Verified downloads: a zoo file is held to the sha256 its entry pins, when downloaded and on `zoo --verify`.

A file server on loopback publishes one good file and one corrupted copy (a byte flipped), both pinned to the
good file's sha256; entries are added to the zoo for the test, and the cache is the test's own folder."""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clipforensics.cli.main import main
from clipforensics.errors import DownloadError
from clipforensics.hub import zoo
from clipforensics.hub.digests import UNPINNED
from clipforensics.hub.zoo import ZOO, ZooEntry

PUBLISHED = b"the published weights" * 100
CORRUPTED = PUBLISHED[:50] + bytes([PUBLISHED[50] ^ 1]) + PUBLISHED[51:]
PIN = hashlib.sha256(PUBLISHED).hexdigest()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """The address of a loopback server holding ``good.pth`` (the published bytes) and ``corrupted.pth``."""
    published = tmp_path / "published"
    published.mkdir()
    (published / "good.pth").write_bytes(PUBLISHED)
    (published / "corrupted.pth").write_bytes(CORRUPTED)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(published)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """The test's own download caches (``zoo.CACHE``'s returned), with the network allowed (the suite sets
    HF_HUB_OFFLINE)."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(zoo, "CACHE", tmp_path / "cache")
    return tmp_path / "cache"


def entry(name: str, url: str, pin: str | None = PIN) -> ZooEntry:
    file = url.rsplit("/", 1)[1]
    return ZooEntry(name, url, {file: pin}, "declip", "a test entry")


def test_a_download_that_matches_its_pin_is_kept(server, cache):
    path = zoo.fetch(entry("good", f"{server}/good.pth"))

    assert path == cache / "good.pth" and path.read_bytes() == PUBLISHED


def test_a_download_with_a_wrong_hash_is_refused_and_leaves_no_file(server, cache):
    corrupted = entry("corrupted", f"{server}/corrupted.pth")

    with pytest.raises(DownloadError) as error:
        zoo.fetch(corrupted)

    message = str(error.value)
    assert f"expected {PIN}" in message and hashlib.sha256(CORRUPTED).hexdigest() in message
    assert "deleted" in message and "--model PATH" in message
    assert list(cache.iterdir()) == []


def test_an_unpinned_download_is_kept_with_a_warning_naming_its_hash(server, cache, caplog):
    with caplog.at_level(logging.WARNING, logger="clipforensics"):
        path = zoo.fetch(entry("unpinned", f"{server}/good.pth", UNPINNED))

    assert path.read_bytes() == PUBLISHED
    assert "not pinned" in caplog.text and PIN in caplog.text


def test_every_released_file_has_an_explicit_pin_or_is_marked_unpinned():
    for name, released in ZOO.items():
        assert released.files, name
        assert all(pin is UNPINNED or len(pin) == 64 for pin in released.pins.values()), name


def test_zoo_verify_checks_the_cache_and_deletes_a_file_that_does_not_match(server, cache, monkeypatch, capsys):
    for name in ("good", "corrupted", "unpinned", "absent"):
        monkeypatch.setitem(ZOO, name, entry(name, f"{server}/{name}.pth", UNPINNED if name == "unpinned" else PIN))
    cache.mkdir()
    (cache / "good.pth").write_bytes(PUBLISHED)
    (cache / "corrupted.pth").write_bytes(CORRUPTED)
    (cache / "unpinned.pth").write_bytes(PUBLISHED)

    assert main(["zoo", "--verify", "good"]) == 0
    assert capsys.readouterr().out.startswith(f"ok          good good.pth (sha256 {PIN})")

    assert main(["zoo", "--verify"]) == 1
    lines = {line[12:].split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["good"].startswith("ok")
    assert lines["corrupted"].startswith("MISMATCH") and "deleted" in lines["corrupted"]
    assert lines["unpinned"].startswith("unpinned") and PIN in lines["unpinned"]
    assert lines["absent"].startswith("not cached")
    assert not (cache / "corrupted.pth").exists() and (cache / "good.pth").exists()


def test_zoo_verify_checks_a_hugging_face_cache_and_deletes_the_blob_of_a_mismatch(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    repo = tmp_path / "hf" / "models--owner--weights"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    (repo / "snapshots" / commit).mkdir(parents=True)
    for file, content in (("config.json", PUBLISHED), ("model.safetensors", CORRUPTED)):
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (repo / "snapshots" / commit / file).symlink_to(blob)
    monkeypatch.setitem(ZOO, "hub-entry", ZooEntry("hub-entry", "owner/weights", {"config.json": PIN,
                                                                                  "model.safetensors": PIN},
                                                   "gend-hf", "a test entry"))

    assert main(["zoo", "--verify", "hub-entry"]) == 1

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok") and out[1].startswith("MISMATCH")
    assert sorted(path.name for path in (repo / "blobs").iterdir()) == [PIN]
    assert not (repo / "snapshots" / commit / "model.safetensors").exists()


def test_zoo_verify_answers_a_misspelt_name_with_the_closest(capsys):
    assert main(["zoo", "--verify", "gend-clip-l15"]) == 2

    assert "did you mean gend-clip-l14" in capsys.readouterr().err


class HubHandler(QuietHandler):
    """Answers as the Hugging Face hub does for ``/owner/weights/resolve/main/<file>``: the file's bytes, with the
    commit and ETag headers the hub client needs."""

    files = {"config.json": PUBLISHED, "model.safetensors": CORRUPTED}

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        content = self.files.get(self.path.removeprefix("/owner/weights/resolve/main/"))
        if content is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", "1" * 40)
        self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if send_body:
            self.wfile.write(content)


def test_a_hub_download_with_a_wrong_hash_is_refused_and_leaves_no_file(cache, tmp_path, monkeypatch):
    import huggingface_hub.constants

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    endpoint = f"http://127.0.0.1:{httpd.server_port}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read from the suite's setting at import
    hub_entry = ZooEntry("hub-entry", "owner/weights", {"config.json": PIN, "model.safetensors": PIN}, "gend-hf",
                         "a test entry")
    try:
        with pytest.raises(DownloadError) as error:
            zoo.fetch(hub_entry)
    finally:
        httpd.shutdown()
        httpd.server_close()

    assert "model.safetensors of owner/weights does not match its pinned sha256" in str(error.value)
    files = [path.name for path in (tmp_path / "hf").rglob("*") if path.is_file() or path.is_symlink()]
    assert hashlib.sha256(CORRUPTED).hexdigest() not in files and "model.safetensors" not in files
    assert "config.json" in files


def test_the_listing_says_whether_each_entrys_files_are_pinned(monkeypatch, capsys):
    monkeypatch.setitem(ZOO, "pinned", entry("pinned", "http://127.0.0.1/pinned.pth"))
    monkeypatch.setitem(ZOO, "half", ZooEntry("half", "owner/weights", {"config.json": PIN, "model.safetensors": None},
                                              "gend-hf", "a test entry"))

    assert main(["zoo"]) == 0

    listing = capsys.readouterr().out
    assert "http://127.0.0.1/pinned.pth (sha256 pinned)" in listing
    assert "hf:owner/weights (sha256 pinned for 1 of 2 files)" in listing
    assert "hf:yermandy/deepfake-detection (sha256 unpinned)" in listing
