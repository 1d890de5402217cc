"""Named published weights: where each lives, what it is, the sha256 of each file, and how it is fetched,
checked and cached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..cache import CACHE
from ..errors import DownloadError
from .digests import UNPINNED, FileCheck, check_cached, check_download

DECLIP_URL = "https://storage.googleapis.com/bitdefender_ml_artifacts/declip/backbone_VIT/ViT_layer20_conv-20_{}.pth"
PROBE_SECONDS = 3.0
"""How long a download waits to learn that its host cannot be reached."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    repo_id: str
    """A Hugging Face hub repository, or a download address (``https://...``)."""
    pins: dict[str, str | None]
    """The files to fetch (the first is what ``load`` opens), each with its pinned sha256 (hex), or ``UNPINNED``
    where no hash of the published file is known."""
    layout: str
    summary: str

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.pins)

    @property
    def pinned(self) -> tuple[str, ...]:
        """The files with a pinned sha256."""
        return tuple(file for file, pin in self.pins.items() if pin is not UNPINNED)

    @property
    def is_url(self) -> bool:
        """Fetched from a download address, not from the Hugging Face hub."""
        return "://" in self.repo_id

    @property
    def address(self) -> str:
        return self.repo_id if self.is_url else f"hf:{self.repo_id}"

    def local_target(self, folder: Path) -> Path:
        return folder / self.files[0] if len(self.files) == 1 else folder


def _declip(name: str, dataset: str, trained_on: str) -> ZooEntry:
    file = f"ViT_layer20_conv-20_{dataset}.pth"
    return ZooEntry(name, DECLIP_URL.format(dataset), {file: UNPINNED}, "declip",
                    f"DeCLIP localizer: frozen CLIP ViT-L/14, layer 20, conv-20, trained on {trained_on} "
                    "(Smeu et al., WACV 2025)")


GEND_FILES = {"config.json": UNPINNED, "model.safetensors": UNPINNED}


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry(
            "lnclip-l14",
            "yermandy/deepfake-detection",
            {"model.ckpt": UNPINNED},
            "deepfake-detection-lightning",
            "LN-tuned CLIP ViT-L/14, LinearNorm head, FF++ c23 (Yermakov et al. 2025), 1.21 GB",
        ),
        ZooEntry(
            "gend-clip-l14",
            "yermandy/GenD_CLIP_L_14",
            GEND_FILES,
            "gend-hf",
            "GenD: LN-tuned CLIP ViT-L/14 with uniformity + alignment losses (WACV 2026), 1.22 GB",
        ),
        ZooEntry(
            "gend-dinov3-l",
            "yermandy/GenD_DINOv3_L",
            GEND_FILES,
            "gend-hf",
            "GenD: LN-tuned DINOv3 ViT-L/16 with uniformity + alignment losses (WACV 2026)",
        ),
        ZooEntry(
            "gend-pe-l",
            "yermandy/GenD_PE_L",
            GEND_FILES,
            "gend-hf",
            "GenD: LN-tuned Perception Encoder PE-Core L/14 with uniformity + alignment losses (WACV 2026)",
        ),
        _declip("declip-l14-pluralistic", "pluralistic", "Dolos Pluralistic inpainting"),
        _declip("declip-l14-lama", "lama", "Dolos LaMa inpainting"),
        _declip("declip-l14-repaint-p2", "repaint-p2-9k", "Dolos RePaint-p2-9k inpainting"),
        _declip("declip-l14-ldm", "ldm", "Dolos LDM inpainting"),
        _declip("declip-l14-coco-sd", "cocosd", "COCO Stable Diffusion inpainting"),
    )
}


def closest_names(name: str) -> list[str]:
    """The zoo names nearest to a misspelt ``name``, best first (none when nothing is near)."""
    import difflib

    return difflib.get_close_matches(name, list(ZOO), n=3, cutoff=0.6)


def resolve(name: str) -> Path:
    """The local path of a zoo entry's weights, downloading them into the hub cache if needed."""
    return fetch(ZOO[name])


def fetch(entry: ZooEntry) -> Path:
    """The local path of ``entry``'s weights, each file downloaded if not cached and held to its pin."""
    if entry.is_url:
        return download_url(entry.repo_id, CACHE / entry.files[0], entry.pins[entry.files[0]])
    folder = hub_snapshot(entry.repo_id, entry.files, pins=entry.pins)
    return entry.local_target(folder)


def verify(entry: ZooEntry) -> list[FileCheck]:
    """Each of ``entry``'s files in the cache checked against its pin; one that does not match is deleted."""
    return [check_cached(entry.name, file, path, entry.pins[file], lambda path=path: _remove(path))
            for file, path in ((file, _cached(entry, file)) for file in entry.files)]


def _cached(entry: ZooEntry, file: str) -> Path | None:
    """Where the cache holds one of ``entry``'s files, if it does."""
    if entry.is_url:
        target = CACHE / file
        return target if target.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.repo_id, file)
    return Path(found) if isinstance(found, str) else None


def _remove(path: Path) -> None:
    """A cached file deleted: the Hugging Face cache's link and the blob it points to, or the file itself."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def download_url(url: str, target: Path, pin: str | None) -> Path:
    """``target`` if already cached, else ``url`` fetched into it (whole file, checked against ``pin``, then
    renamed: an interrupted or mismatching download leaves nothing behind)."""
    if target.is_file():
        return target
    advice = (f"Download {url} where there is internet access and pass the file's path instead of the name "
              "(--model PATH, or clipforensics.load(PATH))")
    if _offline():
        raise DownloadError(f"{target.name} is not cached in {target.parent} and HF_HUB_OFFLINE is set. {advice}")
    unreachable = _unreachable(url)
    if unreachable:
        raise DownloadError(f"{target.name} is not cached in {target.parent} and {unreachable}. {advice}")
    import shutil
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as file:
            shutil.copyfileobj(response, file)
    except Exception as error:  # no network, DNS, HTTP errors: urllib raises many types
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not fetch {url} ({type(error).__name__}: {error}). {advice}") from None
    check_download(partial, pin, f"{target.name} from {url}", partial.unlink, advice)
    partial.replace(target)
    return target


LOCAL_MODEL = "pass the local path instead of the name (--model PATH, or clipforensics.load(PATH))"


def hub_snapshot(repo_id: str, files: tuple[str, ...], instead: str = LOCAL_MODEL,
                 pins: dict[str, str | None] | None = None) -> Path:
    """Fetches ``files`` of a hub repository (or finds them cached) and returns their folder; ``instead``
    tells a user without internet what to pass in place of the name. With ``pins`` (a zoo entry's), each file
    downloaded is held to its pin."""
    return [_download(repo_id, filename, instead, pins) for filename in files][0].parent


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` read now, not at import: cached files only, no network attempt."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _unreachable(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``url``'s host cannot be reached (name lookup and a TCP connection, within ``timeout`` seconds
    in all), or None when it can: one quick probe instead of a client's retries with back-off."""
    import socket
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    failure: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            failure.append(f"{host} cannot be reached ({error.strerror or error})")

    thread = threading.Thread(target=probe, daemon=True)  # a name lookup cannot be timed out otherwise
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"{host} did not answer within {timeout:g} s"
    return failure[0] if failure else None


def _download(repo_id: str, filename: str, instead: str, pins: dict[str, str | None] | None) -> Path:
    """A hub file from the local cache, else from the hub. Offline (``HF_HUB_OFFLINE``, or the hub cannot
    be reached) a file missing from the cache fails at once, without the hub client's retries."""
    from huggingface_hub import constants, hf_hub_download

    advice = f"Download https://huggingface.co/{repo_id} where there is internet access and {instead}"
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, local_files_only=True))
    except Exception:  # not cached (huggingface_hub raises several types for it)
        pass
    if _offline():
        raise DownloadError(f"{filename} of {repo_id} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
                            f"and HF_HUB_OFFLINE is set. {advice}")
    unreachable = _unreachable(constants.ENDPOINT)
    if unreachable:
        raise DownloadError(f"{filename} of {repo_id} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
                            f"and {unreachable}. {advice}")
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as error:  # gated, missing, network lost: huggingface_hub has many error types
        detail = str(error).splitlines()[0] if str(error) else "no detail"
        raise DownloadError(f"could not fetch {filename} of {repo_id} from the Hugging Face hub "
                            f"({type(error).__name__}: {detail}). {advice}") from None
    if pins is not None:
        check_download(path, pins[filename], f"{filename} of {repo_id}", lambda: _remove(path), advice)
    return path
