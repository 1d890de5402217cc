"""Named published weights: where each lives, what it is, and how it is fetched and cached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError

DECLIP_URL = "https://storage.googleapis.com/bitdefender_ml_artifacts/declip/backbone_VIT/ViT_layer20_conv-20_{}.pth"
CACHE = Path(os.environ.get("CLIPFORENSICS_CACHE", Path.home() / ".cache" / "clipforensics"))


@dataclass(frozen=True)
class ZooEntry:
    name: str
    repo_id: str
    """A Hugging Face hub repository, or a download address (``https://...``)."""
    files: tuple[str, ...]
    """Files to fetch from the hub repository; the first is what ``load`` opens."""
    layout: str
    summary: str

    @property
    def address(self) -> str:
        return self.repo_id if self.repo_id.startswith("https://") else f"hf:{self.repo_id}"

    def local_target(self, folder: Path) -> Path:
        return folder / self.files[0] if len(self.files) == 1 else folder


def _declip(name: str, dataset: str, trained_on: str) -> ZooEntry:
    return ZooEntry(name, DECLIP_URL.format(dataset), (f"ViT_layer20_conv-20_{dataset}.pth",), "declip",
                    f"DeCLIP localizer: frozen CLIP ViT-L/14, layer 20, conv-20, trained on {trained_on} "
                    "(Smeu et al., WACV 2025)")


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
        _declip("declip-l14-pluralistic", "pluralistic", "Dolos Pluralistic inpainting"),
        _declip("declip-l14-lama", "lama", "Dolos LaMa inpainting"),
        _declip("declip-l14-repaint-p2", "repaint-p2-9k", "Dolos RePaint-p2-9k inpainting"),
        _declip("declip-l14-ldm", "ldm", "Dolos LDM inpainting"),
        _declip("declip-l14-coco-sd", "cocosd", "COCO Stable Diffusion inpainting"),
    )
}


def resolve(name: str) -> Path:
    """The local path of a zoo entry's weights, downloading them into the hub cache if needed."""
    entry = ZOO[name]
    if entry.repo_id.startswith("https://"):
        return download_url(entry.repo_id, CACHE / entry.files[0])
    folder = hub_snapshot(entry.repo_id, entry.files)
    return entry.local_target(folder)


def download_url(url: str, target: Path) -> Path:
    """``target`` if already cached, else ``url`` fetched into it (whole file, then renamed: an
    interrupted download leaves nothing behind)."""
    if target.is_file():
        return target
    advice = (f"Download {url} where there is internet access and pass the file's path instead of the name "
              "(--model PATH, or clipforensics.load(PATH))")
    if _offline():
        raise DownloadError(f"{target.name} is not cached in {target.parent} and HF_HUB_OFFLINE is set. {advice}")
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
    partial.replace(target)
    return target


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
