"""Training with Lightning: the LN-tuned CLIP detector (the papers' losses, slerp, schedule and
selection), the DeCLIP localizer (per-pixel BCE, lr/10 on plateau) and the joint model (both).

The models (``models/``) know nothing of training; this module wraps them. What is trained follows
from ``model.head`` and ``model.decoder``: a head alone is a detector, a decoder alone a localizer,
both the joint model. A run is fully described by a ``TrainConfig`` (YAML presets in ``configs/``),
saved with the run.
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

from .. import metrics
from . import losses
from ..data.augment import AugmentConfig, Augmenter
from ..models.backbones import BackboneConfig, known_backbone
from ..hub.checkpoints import save_model
from ..data.dataset import FrameDataset, PairedBatchSampler
from ..data.manifest import FAKE, Sample, frames_per_video, limit_files, load_manifest, split_readable
from ..evaluation.localization import MAP_SIZE
from ..metrics import PIXEL_METRICS, pixel_scores
from ..models.detector import ClipDetector, create_detector
from ..models.joint import JointModel, create_joint
from ..models.localizer import ClipLocalizer, create_localizer
from ..models.tuning import LoraSettings, apply_tuning

log = logging.getLogger(__name__)


@dataclass
class ModelConfig:
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


class TrainingModule(L.LightningModule):
    """Cross-entropy + uniformity + alignment on the detector's features (slerp-augmented), per-pixel
    BCE on the localizer's map, or both for the joint model; AdamW."""

    def __init__(self, model: Trainable, config: TrainConfig, val_samples: list[Sample]):
        super().__init__()
        self.model = model
        self.config = config
        self.val_samples = val_samples
        self._val_outputs: list[dict[str, torch.Tensor]] = []

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        settings = self.config.loss
        labels = batch["label"]
        features, maps = forward_parts(self.model, batch["image"])
        parts: dict[str, tuple[float, torch.Tensor]] = {}
        if features is not None:
            if settings.slerp:
                features = losses.slerp_augment(features, labels, tuple(settings.slerp_range))
            output = self.model.forward_head(features)
            parts["ce"] = (settings.cross_entropy, F.cross_entropy(output.logits.float(), labels,
                                                                   label_smoothing=settings.label_smoothing))
            if settings.uniformity:
                parts["uniformity"] = (settings.uniformity, losses.uniformity(output.features.float()))
            if settings.alignment:
                parts["alignment"] = (settings.alignment, losses.alignment(output.features.float(), labels))
        if maps is not None:
            parts["mask"] = (settings.mask, losses.mask_bce(maps.float(), batch["mask"], batch["has_mask"]))
        total = sum(weight * value for weight, value in parts.values())
        self.log("train/loss", total, prog_bar=True, batch_size=len(labels), sync_dist=True)
        for name, (_, value) in parts.items():
            self.log(f"train/{name}", value, batch_size=len(labels), sync_dist=True)
        return total

    def validation_step(self, batch: dict, batch_index: int) -> None:
        features, maps = forward_parts(self.model, batch["image"])
        output = {"index": batch["index"], "label": batch["label"]}
        if features is not None:
            logits = self.model.forward_head(features).logits.float()
            output["p_fake"] = logits.softmax(1)[:, self.model.config.fake_index]
        if maps is not None:
            output.update(map_scores(torch.sigmoid(maps.float())[:, 0], batch["mask"][:, 0] > 0.5,
                                     batch["has_mask"] & (batch["label"] == FAKE)))
        self._val_outputs.append(output)

    def on_validation_epoch_end(self) -> None:
        """Metrics over the whole validation set, gathered from every rank first."""
        if not self._val_outputs:
            return
        gathered = {key: self.all_gather(torch.cat([o[key] for o in self._val_outputs])).reshape(-1).tolist()
                    for key in self._val_outputs[0]}
        self._val_outputs.clear()
        order = sorted(dict(zip(gathered["index"], range(len(gathered["index"])))).items())
        rows = {key: [values[position] for _, position in order] for key, values in gathered.items()}
        labels = np.array(rows["label"], dtype=int)
        if "p_fake" in rows:
            self._log_detection(rows["index"], labels, np.array(rows["p_fake"]))
        if "iou" in rows:
            self._log_localization(labels, rows)

    def _log_detection(self, indices: list[int], labels: np.ndarray, values: np.ndarray) -> None:
        _, video_labels, video_scores = metrics.aggregate_videos([self._val_path(i) for i in indices], labels, values)
        for level, (level_labels, level_scores) in {"frame": (labels, values),
                                                    "video": (video_labels, video_scores)}.items():
            for name, value in metrics.detection_metrics(level_labels, level_scores).items():
                self.log(f"val/{level}_{name}", float(value), sync_dist=False)
        self.log("val/video_mAP", float(metrics.average_precision(video_labels, video_scores)), prog_bar=True)

    def _val_path(self, index: int) -> str:
        """A validation item's frame path; a self-blended fake (indices past the samples) gets its own
        video folder, so that it is not averaged with the real frames it was made from."""
        count = len(self.val_samples)
        path = Path(self.val_samples[index % count].path)
        return str(path) if index < count else str(path.parent.with_name(path.parent.name + "@sbi") / path.name)

    def _log_localization(self, labels: np.ndarray, rows: dict[str, list[float]]) -> None:
        """Pixel metrics averaged over the masked fakes (DeCLIP); image AP and accuracy from the map score."""
        masked = np.array(rows["masked"], dtype=bool)
        for name in PIXEL_METRICS:
            values = np.array(rows[name])[masked]
            self.log(f"val/{name}", float(np.nanmean(values)) if masked.any() else math.nan, sync_dist=False,
                     prog_bar=name == "iou")
        for name, value in metrics.detection_metrics(labels, np.array(rows["score"])).items():
            self.log(f"val/map_{name}", float(value), sync_dist=False)

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
        elif optim.scheduler == "plateau":
            return optimizer  # PlateauDecay divides the lr between epochs
        else:
            raise ValueError(f"scheduler must be cosine, cosine-restarts or plateau, not {optim.scheduler!r}")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


Trainable = ClipDetector | ClipLocalizer | JointModel


def forward_parts(model: Trainable, pixels: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The detector's features (before its head) and the localizer's map logits, whichever the model has."""
    if isinstance(model, ClipLocalizer):
        return None, model(pixels).logits
    if isinstance(model, JointModel):
        return model.forward_parts(pixels)
    return model.forward_features(pixels), None


def map_scores(probabilities: torch.Tensor, truth: torch.Tensor, masked: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image: the map's score (its mean) and, for masked fakes, IoU and F1 at 0.5, best F1 and pixel
    AP (NaN elsewhere), as tensors on the maps' device, ready to gather across ranks."""
    if probabilities.shape[-2:] != truth.shape[-2:]:
        probabilities = F.interpolate(probabilities[:, None], size=truth.shape[-2:], mode="bilinear",
                                      align_corners=False)[:, 0]
    rows = [pixel_scores(p, t) if m else dict.fromkeys(PIXEL_METRICS, math.nan)
            for p, t, m in zip(probabilities.cpu().numpy(), truth.cpu().numpy(), masked.tolist())]
    device = probabilities.device
    scores = {name: torch.tensor([row[name] for row in rows], device=device) for name in PIXEL_METRICS}
    return {**scores, "masked": masked.float(), "score": probabilities.mean(dim=(1, 2)).float()}


class PlateauDecay(L.Callback):
    """DeCLIP's schedule: when ``monitor`` has not improved for ``patience`` validations, the lr is
    divided by 10; training stops once it would fall below ``min_lr``."""

    def __init__(self, monitor: str, patience: int, min_lr: float):
        self.monitor, self.patience, self.min_lr = monitor, patience, min_lr
        self.best, self.stalled = -math.inf, 0

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None:
            return
        if float(score) > self.best:
            self.best, self.stalled = float(score), 0
            return
        self.stalled += 1
        if self.stalled < self.patience:
            return
        self.stalled = 0
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] /= 10
                if group["lr"] < self.min_lr:
                    trainer.should_stop = True
        log.info("%s stalled for %d validations: lr divided by 10%s", self.monitor, self.patience,
                 "; stopping" if trainer.should_stop else "")

    def state_dict(self) -> dict:
        return {"best": self.best, "stalled": self.stalled}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.stalled = state["best"], state["stalled"]


class ExportModel(L.Callback):
    """Writes the best model (by the validation ``monitor``, higher is better) and the last one in the
    project's format."""

    def __init__(self, folder: Path, config: TrainConfig, monitor: str):
        self.folder = folder
        self.config = config
        self.monitor = monitor
        self.best = -math.inf

    def on_validation_end(self, trainer: L.Trainer, module: TrainingModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None or not trainer.is_global_zero:
            return
        if float(score) > self.best:
            self.best = float(score)
            key = self.monitor.replace("/", "_")
            self._export(module, "best", trainer.current_epoch + 1, trainer, {key: self.best})

    def on_train_end(self, trainer: L.Trainer, module: TrainingModule) -> None:
        if trainer.is_global_zero:
            self._export(module, "last", trainer.current_epoch, trainer, {})

    def _export(self, module: TrainingModule, name: str, epochs: int, trainer: L.Trainer, extra: dict) -> None:
        provenance = {"epochs_trained": epochs, "global_step": trainer.global_step,
                      "train_config": self.config.to_dict(), **extra}
        save_model(module.model, self.folder / name, provenance=provenance)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]


def read_samples(specs: list[str], frames: int | None = None, limit: int | None = None,
                 seed: int = 0, split: str | None = None) -> list[Sample]:
    """Manifests joined, unreadable files listed once with a count and left out, then thinned."""
    samples = [sample for spec in specs for sample in load_manifest(spec, split)]
    samples, problems = split_readable(samples)
    if problems:
        log.warning("%d file(s) left out:\n  %s", len(problems), "\n  ".join(problems))
    if frames:
        samples = frames_per_video(samples, frames)
    if limit:
        samples = limit_files(samples, limit, seed)
    return samples


def build_model(config: ModelConfig) -> Trainable:
    """A detector (head), a localizer (decoder) or the joint model (both), tuned as ``config.tuning``
    says; head and decoder always train."""
    backbone = (known_backbone(config.backbone) if isinstance(config.backbone, str)
                else BackboneConfig(name="custom", **config.backbone))
    if config.head is None and config.decoder is None:
        raise ValueError("model.head and model.decoder are both null: nothing to train")
    if config.decoder is None:
        model = create_detector(backbone, config.head, config.weights)
    elif config.head is None:
        model = create_localizer(backbone, config.layer, config.decoder, config.weights)
    else:
        model = create_joint(backbone, config.head, config.layer, config.decoder, config.weights)
    counts = apply_tuning(model, config.tuning, LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha))
    log.info("tuning %s: %s", config.tuning, counts)
    return model


def fit(config: TrainConfig, model: Trainable | None = None) -> Path:
    """Trains, resuming from ``<output_dir>/checkpoints/last.ckpt`` when a killed run left one;
    returns the folder holding ``best/`` and ``last/`` in the project's format."""
    out = Path(config.trainer.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(config.to_dict())), sort_keys=False))
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    model = model or build_model(config.model)
    data = config.data
    train = read_samples(data.train, data.frames_per_video, data.limit_train_files, config.trainer.seed,
                         data.train_split)
    val = read_samples(data.val, data.frames_per_video, split=data.val_split)
    if not train:
        raise ValueError("no training frames: check data.train")
    if data.fakes not in ("data", "sbi"):
        raise ValueError(f"data.fakes must be data or sbi, not {data.fakes!r}")
    monitor = config.trainer.monitor or ("val/iou" if isinstance(model, ClipLocalizer) else "val/video_mAP")
    callbacks = [L.pytorch.callbacks.ModelCheckpoint(out / "checkpoints", save_last=True),
                 ExportModel(out, config, monitor)]
    if config.optim.scheduler == "plateau":
        callbacks.append(PlateauDecay(monitor, config.optim.patience, config.optim.min_lr))
    micro = config.optim.micro_batch_size or config.optim.batch_size
    trainer = L.Trainer(
        max_epochs=config.trainer.epochs,
        accelerator=config.trainer.accelerator,
        devices=config.trainer.devices,
        num_nodes=config.trainer.num_nodes,
        strategy=config.trainer.strategy,
        precision=_precision(config.trainer.precision),
        accumulate_grad_batches=max(1, config.optim.batch_size // micro),
        logger=_loggers(config, out),
        callbacks=callbacks,
        default_root_dir=out,
        limit_train_batches=config.trainer.limit_train_batches,
        limit_val_batches=config.trainer.limit_val_batches,
        num_sanity_val_steps=0,
        enable_progress_bar=True,
        log_every_n_steps=1,
        use_distributed_sampler=False,
    )
    preprocessing = model.config.preprocessing
    mask_size = MAP_SIZE if isinstance(model, (ClipLocalizer, JointModel)) else None
    augment = Augmenter(AugmentConfig()) if data.augment else None
    train_set = FrameDataset(train, preprocessing, augment, self_blend=data.fakes == "sbi", mask_size=mask_size)
    train_loader = _loader(train_set, micro, config, trainer, shuffle=True, paired=data.paired)
    val_set = FrameDataset(val, preprocessing, self_blend=data.fakes == "sbi", mask_size=mask_size)
    val_loader = _loader(val_set, micro, config, trainer, shuffle=False) if val else None
    last = out / "checkpoints" / "last.ckpt"
    trainer.fit(TrainingModule(model.train(), config, val), train_loader, val_loader,
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
