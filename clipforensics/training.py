"""Training the LN-tuned CLIP detector with Lightning: the paper's losses, slerp, schedule and selection.

The model (``models/detector.py``) knows nothing of training; this module wraps it. A run is fully
described by a ``TrainConfig`` (YAML presets in ``configs/``), saved with the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, DistributedSampler

from . import losses, metrics
from .augment import AugmentConfig, Augmenter
from .backbones import BackboneConfig, known_backbone
from .checkpoints import save_detector
from .data.dataset import FrameDataset, PairedBatchSampler
from .data.manifest import Sample, frames_per_video, limit_files, load_manifest, split_readable
from .models.detector import ClipDetector, create_detector
from .tuning import LoraSettings, apply_tuning

log = logging.getLogger(__name__)


@dataclass
class ModelConfig:
    backbone: str | dict = "openai/clip-vit-large-patch14"
    """One of the four OpenAI CLIP ViT names, or an architecture {width, layers, mlp_width,
    patch_size, image_size} (random weights: tests and experiments)."""
    weights: str | None = "hub"
    """CLIP weights: 'hub', a local Hugging Face CLIP folder, or null for random (tests)."""
    head: str = "LinearNorm"
    tuning: str = "layernorm"
    """layernorm | lora | linear-probe | full"""
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
    """data: the manifests' fakes; sbi: self-blended pseudo-fakes of the real frames instead."""
    augment: bool = True
    """The GenD augmentation set on training frames."""
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


@dataclass
class OptimConfig:
    lr: float = 3e-4
    min_lr: float = 1e-6
    scheduler: str = "cosine"
    """cosine (to min_lr over the run) | cosine-restarts (period restart_epochs), per step"""
    restart_epochs: int = 10
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
    output_dir: str = "runs/train"
    tensorboard: bool = False
    wandb: bool = False
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
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
        raise ValueError(f"unknown config field(s) {', '.join(where + k for k in unknown)}; "
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
            raise ValueError(f"--set takes key=value, got {override!r}")
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


class DetectorTraining(L.LightningModule):
    """Cross-entropy + uniformity + alignment on the detector, slerp in feature space, AdamW."""

    def __init__(self, model: ClipDetector, config: TrainConfig, val_samples: list[Sample]):
        super().__init__()
        self.model = model
        self.config = config
        self.val_samples = val_samples
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        settings = self.config.loss
        labels = batch["label"]
        features = self.model.forward_features(batch["image"])
        if settings.slerp:
            features = losses.slerp_augment(features, labels, tuple(settings.slerp_range))
        output = self.model.forward_head(features)
        parts = {"ce": (settings.cross_entropy,
                        F.cross_entropy(output.logits.float(), labels, label_smoothing=settings.label_smoothing))}
        if settings.uniformity:
            parts["uniformity"] = (settings.uniformity, losses.uniformity(output.features.float()))
        if settings.alignment:
            parts["alignment"] = (settings.alignment, losses.alignment(output.features.float(), labels))
        total = sum(weight * value for weight, value in parts.values())
        self.log("train/loss", total, prog_bar=True, batch_size=len(labels), sync_dist=True)
        for name, (_, value) in parts.items():
            self.log(f"train/{name}", value, batch_size=len(labels), sync_dist=True)
        return total

    def validation_step(self, batch: dict, batch_index: int) -> None:
        logits = self.model(batch["image"]).logits.float()
        self._val_outputs.append((batch["index"], logits.softmax(1)[:, self.model.config.fake_index]))

    def on_validation_epoch_end(self) -> None:
        """Frame and video metrics over the whole validation set, gathered from every rank first."""
        if not self._val_outputs:
            return
        indices = self.all_gather(torch.cat([i for i, _ in self._val_outputs])).reshape(-1).tolist()
        scores = self.all_gather(torch.cat([s for _, s in self._val_outputs])).reshape(-1).tolist()
        self._val_outputs.clear()
        by_index = dict(zip(indices, scores))  # samplers pad ranks with repeats; each frame counts once
        order = sorted(by_index)
        labels = np.array([self.val_samples[i].label for i in order])
        values = np.array([by_index[i] for i in order])
        _, video_labels, video_scores = metrics.aggregate_videos([self.val_samples[i].path for i in order],
                                                                 labels, values)
        for level, (level_labels, level_scores) in {"frame": (labels, values),
                                                    "video": (video_labels, video_scores)}.items():
            for name, value in metrics.detection_metrics(level_labels, level_scores).items():
                self.log(f"val/{level}_{name}", float(value), sync_dist=False)
        self.log("val/video_mAP", float(metrics.average_precision(video_labels, video_scores)), prog_bar=True)

    def configure_optimizers(self):
        optim = self.config.optim
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                (no_decay if parameter.ndim < 2 or "norm" in name else decay).append(parameter)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=optim.lr, betas=tuple(optim.betas),
        )
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        if optim.scheduler == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=optim.min_lr)
        elif optim.scheduler == "cosine-restarts":
            period = max(1, total_steps * optim.restart_epochs // max(1, self.trainer.max_epochs))
            scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=period,
                                                                             eta_min=optim.min_lr)
        else:
            raise ValueError(f"scheduler must be cosine or cosine-restarts, not {optim.scheduler!r}")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class ExportDetector(L.Callback):
    """Writes the best model (by validation video-level mAP) and the last one in the project's format."""

    def __init__(self, folder: Path, config: TrainConfig):
        self.folder = folder
        self.config = config
        self.best = -math.inf

    def on_validation_end(self, trainer: L.Trainer, module: DetectorTraining) -> None:
        score = trainer.callback_metrics.get("val/video_mAP")
        if trainer.sanity_checking or score is None or not trainer.is_global_zero:
            return
        if float(score) > self.best:
            self.best = float(score)
            self._export(module, "best", trainer.current_epoch + 1, trainer, {"val_video_mAP": self.best})

    def on_train_end(self, trainer: L.Trainer, module: DetectorTraining) -> None:
        if trainer.is_global_zero:
            self._export(module, "last", trainer.current_epoch, trainer, {})

    def _export(self, module: DetectorTraining, name: str, epochs: int, trainer: L.Trainer, extra: dict) -> None:
        provenance = {"epochs_trained": epochs, "global_step": trainer.global_step,
                      "train_config": self.config.to_dict(), **extra}
        save_detector(module.model, self.folder / name, provenance=provenance)


def read_samples(specs: list[str], frames: int | None = None, limit: int | None = None,
                 seed: int = 0) -> list[Sample]:
    """Manifests joined, unreadable files listed once with a count and left out, then thinned."""
    samples = [sample for spec in specs for sample in load_manifest(spec)]
    samples, problems = split_readable(samples)
    if problems:
        log.warning("%d file(s) left out:\n  %s", len(problems), "\n  ".join(problems))
    if frames:
        samples = frames_per_video(samples, frames)
    if limit:
        samples = limit_files(samples, limit, seed)
    return samples


def build_model(config: ModelConfig) -> ClipDetector:
    backbone = (known_backbone(config.backbone) if isinstance(config.backbone, str)
                else BackboneConfig(name="custom", **config.backbone))
    model = create_detector(backbone, config.head, config.weights)
    counts = apply_tuning(model, config.tuning, LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha))
    log.info("tuning %s: %s", config.tuning, counts)
    return model


def fit(config: TrainConfig, model: ClipDetector | None = None) -> Path:
    """Trains, resuming from ``<output_dir>/checkpoints/last.ckpt`` when a killed run left one;
    returns the folder holding ``best/`` and ``last/`` in the project's format."""
    out = Path(config.trainer.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(config.to_dict())), sort_keys=False))
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    model = model or build_model(config.model)
    train = read_samples(config.data.train, config.data.frames_per_video, config.data.limit_train_files,
                         config.trainer.seed)
    val = read_samples(config.data.val, config.data.frames_per_video)
    if not train:
        raise ValueError("no training frames: check data.train")
    preprocessing = model.config.preprocessing
    augment = Augmenter(AugmentConfig()) if config.data.augment else None
    micro = config.optim.micro_batch_size or config.optim.batch_size
    if config.data.fakes not in ("data", "sbi"):
        raise ValueError(f"data.fakes must be data or sbi, not {config.data.fakes!r}")
    trainer = L.Trainer(
        max_epochs=config.trainer.epochs,
        accelerator=config.trainer.accelerator,
        devices=config.trainer.devices,
        num_nodes=config.trainer.num_nodes,
        strategy=config.trainer.strategy,
        precision=_precision(config.trainer.precision),
        accumulate_grad_batches=max(1, config.optim.batch_size // micro),
        logger=_loggers(config, out),
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(out / "checkpoints", save_last=True),
                   ExportDetector(out, config)],
        default_root_dir=out,
        limit_train_batches=config.trainer.limit_train_batches,
        limit_val_batches=config.trainer.limit_val_batches,
        num_sanity_val_steps=0,
        enable_progress_bar=True,
        log_every_n_steps=1,
        use_distributed_sampler=False,
    )
    train_set = FrameDataset(train, preprocessing, augment, self_blend=config.data.fakes == "sbi")
    train_loader = _loader(train_set, micro, config, trainer, shuffle=True, paired=config.data.paired)
    val_loader = _loader(FrameDataset(val, preprocessing), micro, config, trainer, shuffle=False) if val else None
    last = out / "checkpoints" / "last.ckpt"
    trainer.fit(DetectorTraining(model.train(), config, val), train_loader, val_loader,
                ckpt_path=str(last) if last.is_file() else None)
    return out


def _loader(dataset: FrameDataset, batch_size: int, config: TrainConfig, trainer: L.Trainer, shuffle: bool,
            paired: bool = False) -> DataLoader:
    """Each rank's share of ``dataset``: samplers are built here rather than injected by Lightning, which
    cannot shard a custom batch sampler such as the paired one."""
    workers = config.data.num_workers
    common = {"num_workers": workers, "persistent_workers": workers > 0}
    ranks = {"replicas": trainer.world_size, "rank": trainer.global_rank}
    seed = config.trainer.seed
    if paired:
        return DataLoader(dataset, batch_sampler=PairedBatchSampler(dataset, batch_size, seed, **ranks), **common)
    sampler = DistributedSampler(dataset, num_replicas=ranks["replicas"], rank=ranks["rank"], shuffle=shuffle,
                                 seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=False, **common)


def _precision(precision: str) -> str:
    if precision != "auto":
        return precision
    return "bf16-mixed" if torch.cuda.is_available() else "32-true"


def _loggers(config: TrainConfig, out: Path) -> list:
    from lightning.pytorch import loggers

    chosen = [loggers.CSVLogger(out, name="logs")]
    if config.trainer.tensorboard:
        chosen.append(loggers.TensorBoardLogger(out, name="tensorboard"))
    if config.trainer.wandb:
        chosen.append(loggers.WandbLogger(save_dir=out, project="clipforensics"))
    return chosen
