"""Named published weights: where each lives, what it is, and how it is fetched and cached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DownloadError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    repo_id: str
    files: tuple[str, ...]
    """Files to fetch from the Hugging Face hub repository; the first is what ``load`` opens."""
    layout: str
    summary: str

    def local_target(self, folder: Path) -> Path:
        return folder / self.files[0] if len(self.files) == 1 else folder


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry(
            "lnclip-l14",
            "yermandy/deepfake-detection",
            ("model.ckpt",),
            "deepfake-detection-lightning",
            "LN-tuned CLIP ViT-L/14, LinearNorm head, FF++ c23 (Yermakov et al. 2025), 1.21 GB",
        ),
        ZooEntry(
            "gend-clip-l14",
            "yermandy/GenD_CLIP_L_14",
            ("config.json", "model.safetensors"),
            "gend-hf",
            "GenD: LN-tuned CLIP ViT-L/14 with uniformity + alignment losses (WACV 2026), 1.22 GB",
        ),
    )
}


def resolve(name: str) -> Path:
    """The local path of a zoo entry's weights, downloading them into the hub cache if needed."""
    entry = ZOO[name]
    folder = hub_snapshot(entry.repo_id, entry.files)
    return entry.local_target(folder)


def hub_snapshot(repo_id: str, files: tuple[str, ...]) -> Path:
    """Fetches ``files`` of a hub repository (or finds them cached) and returns their folder."""
    return [_download(repo_id, filename) for filename in files][0].parent


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` read now, not at import: cached files only, no network attempt."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _download(repo_id: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, local_files_only=_offline()))
    except Exception as error:  # offline, gated, missing: huggingface_hub has many error types
        detail = str(error).splitlines()[0] if str(error) else "no detail"
        raise DownloadError(
            f"could not fetch {filename} of {repo_id} from the Hugging Face hub ({type(error).__name__}: {detail}). "
            f"Download https://huggingface.co/{repo_id} where there is internet access (or set HF_HUB_OFFLINE=1 "
            "to use only the local cache) and pass the local "
            "path instead of the name (--model PATH, or clipforensics.load(PATH))"
        ) from None
