"""A training run, fully described: the YAML presets in ``configs/`` map onto these dataclasses, field by
field; unknown fields are refused with the valid ones listed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import UsageError


@dataclass
class ModelSettings:
    backbone: str | dict = "openai/clip-vit-large-patch14"
    """One of the four OpenAI CLIP ViT names, or an architecture {width, layers, mlp_width,
    patch_size, image_size} (random weights: tests and experiments)."""
    weights: str | None = "hub"
    """CLIP weights: 'hub', a local Hugging Face CLIP folder, or null for random (tests)."""
    head: str | None = "LinearNorm"
    """LinearNorm | linear: detection; null: a localizer alone."""
    decoder: str | None = None
    """conv-4 | conv-12 | conv-20 | linear | attention: localization (DeCLIP); null: detection alone."""
    layer: int = 20
    """The block whose patch tokens the decoder reads (DeCLIP: 20 of ViT-L/14's 24)."""
    tuning: str = "layernorm"
    """layernorm | lora | linear-probe | full: what trains in the backbone besides head and decoder
    (linear-probe freezes it, as DeCLIP does)."""
    lora_rank: int = 8
    lora_alpha: int = 16


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)
    """Manifests: dataset-layout folders, list files (.txt), CSV manifests or DeepfakeBench JSON."""
    val: list[str] = field(default_factory=list)
    frames_per_video: int | None = None
    """Frames kept per video, evenly spaced; null keeps all."""
    limit_train_files: int | None = None
    """Whole videos drawn (seeded) until this many frames."""
    paired: bool = False
    """Each fake with a real frame of its source video in the same batch (GenD)."""
    fakes: str = "data"
    """data: the manifests' fakes; sbi: self-blended pseudo-fakes of the real frames instead (in
    training and validation)."""
    augment: bool = True
    """The GenD augmentation set on training frames."""
    train_split: str | None = None
    """Split kept from Dolos folders and DeepfakeBench JSON (train, valid, test); null keeps all."""
    val_split: str | None = None
    num_workers: int = 4


@dataclass
class LossConfig:
    cross_entropy: float = 1.0
    label_smoothing: float = 0.0
    uniformity: float = 0.0
    alignment: float = 0.0
    slerp: bool = True
    """Slerp augmentation of the features, per class (seed paper)."""
    slerp_range: tuple[float, float] = (0.0, 1.0)
    mask: float = 1.0
    """Weight of the per-pixel BCE of the map (models with a decoder; only on images with a mask)."""


@dataclass
class OptimConfig:
    lr: float = 3e-4
    min_lr: float = 1e-6
    scheduler: str = "cosine"
    """cosine (to min_lr over the run) | cosine-restarts (period restart_epochs), per step |
    plateau (DeCLIP: lr/10 when the monitored metric stalls for patience epochs; stop below min_lr)"""
    restart_epochs: int = 10
    patience: int = 5
    weight_decay: float = 0.0
    """Applied to weights only: never to norms and biases."""
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 128
    """Effective batch; reached by accumulating micro-batches when micro_batch_size is smaller."""
    micro_batch_size: int | None = None


@dataclass
class TrainerConfig:
    epochs: int = 10
    precision: str = "auto"
    """auto = bf16-mixed on GPU, 32 on CPU; or any Lightning precision."""
    accelerator: str = "auto"
    devices: str | int = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 42
    monitor: str | None = None
    """Metric choosing the best model (higher is better); null: val/video_mAP with a head, else val/iou."""
    output_dir: str = "runs/train"
    tensorboard: bool = False
    wandb: bool = False
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None


@dataclass
class TrainConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return _build(cls, data, "")


def _build(kind, data: dict, where: str):
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(f"unknown config field(s) {', '.join(where + k for k in unknown)}; "
                         f"valid here: {', '.join(known)}")
    values = {}
    for name, value in data.items():
        default = known[name].default_factory() if known[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value or {}, f"{where}{name}.")
        elif isinstance(value, list) and isinstance(getattr(kind(), name, None), tuple):
            values[name] = tuple(value)
        else:
            values[name] = value
    return kind(**values)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A YAML preset, then ``key.sub=value`` overrides (values parsed as YAML)."""
    data = yaml.safe_load(Path(path).read_text()) if path else {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise UsageError(f"--set takes key=value, got {override!r}")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _parse_value(value)
    return TrainConfig.from_dict(data)


def _parse_value(text: str):
    """YAML, except that ``1e-3`` (a string to YAML 1.1) is the number it looks like."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
