"""``fit(config)``: the run folder opened (``runs``), manifests to datasets and loaders (each rank its
share), the model built and tuned, Lightning's Trainer with the run's callbacks and loggers and without
its banners; a killed run resumes from its last checkpoint."""

from __future__ import annotations

import logging
import warnings
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..data.augment import AugmentConfig, Augmenter
from ..data.dataset import FrameDataset, PairedBatchSampler
from ..data.manifest import (Sample, check_one_label_per_video, frames_per_video, limit_files, load_manifest,
                             split_readable)
from ..errors import UsageError
from ..hub.towers import read_tower_weights
from ..models.factory import create_model
from ..models.model import ForensicsModel
from ..models.tuning import LoraSettings, apply_tuning
from ..words import counted
from .callbacks import EpochProgress, ExportModel, PlateauDecay
from .config import ModelSettings, TrainConfig
from .module import TrainingModule
from .runs import RUN_DIR_VARIABLE, finish_run, open_run

log = logging.getLogger(__name__)


def read_samples(specs: list[str], frames: int | None = None, limit: int | None = None,
                 seed: int = 0, split: str | None = None) -> list[Sample]:
    """Manifests joined, unreadable files listed once with a count and left out, then thinned."""
    samples = [sample for spec in specs for sample in load_manifest(spec, split)]
    samples, problems = split_readable(samples)
    if problems:
        log.warning("%s left out:\n  %s", counted(len(problems), "file"), "\n  ".join(problems))
    if frames:
        samples = frames_per_video(samples, frames)
    if limit:
        samples = limit_files(samples, limit, seed)
    return samples


def build_model(settings: ModelSettings) -> ForensicsModel:
    """A detector (head), a localizer (decoder) or the joint model (both), tuned as ``settings.tuning``
    says; head and decoder always train."""
    config = settings.as_model_config()
    tower = read_tower_weights(config.backbone, settings.weights) if settings.weights is not None else None
    model = create_model(config, tower=tower)
    counts = apply_tuning(model, settings.tuning, LoraSettings(rank=settings.lora_rank, alpha=settings.lora_alpha))
    log.info("tuning %s: %s", settings.tuning, counts)
    return model


def fit(config: TrainConfig, model: ForensicsModel | None = None, fresh: bool = False) -> Path:
    """Trains in ``trainer.output_dir``, resuming from its ``checkpoints/last.ckpt`` when a killed (or
    shorter) run of the same configuration left one; a folder holding another configuration's run is
    refused, or with ``fresh`` a new folder beside it is used (see ``runs``). Returns the run folder, with
    ``last/`` and, when validation found one, ``best/`` in the project's format; ``runs.report`` says which
    to use."""
    data = config.data
    train = read_samples(data.train, data.frames_per_video, data.limit_train_files, config.trainer.seed,
                         data.train_split)
    val = read_samples(data.val, data.frames_per_video, split=data.val_split)
    check_one_label_per_video(val, f"data.val {data.val}")
    if not train:
        raise UsageError("no training frames: check data.train")
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    model = model or build_model(config.model)
    config, todo = open_run(config, fresh)  # only once data and model are there: a failed start leaves no run
    out = Path(config.trainer.output_dir)
    if not todo:
        return out
    monitor = config.trainer.monitor or ("val/video_mAP" if model.has_head else "val/iou")
    export = ExportModel(out, config, monitor)
    callbacks = [L.pytorch.callbacks.ModelCheckpoint(out / "checkpoints", save_last=True), export, EpochProgress()]
    if config.optim.scheduler == "plateau":
        callbacks.append(PlateauDecay(monitor, config.optim.patience, config.optim.min_lr))
    micro = config.optim.micro_batch_size or config.optim.batch_size
    with _quiet_lightning(), _run_folder_for_launched_processes(out):
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
            enable_model_summary=False,
            log_every_n_steps=1,
            use_distributed_sampler=False,
        )
        preprocessing = model.config.preprocessing
        mask_size = model.config.map_size if model.has_decoder else None
        augment = Augmenter(AugmentConfig()) if data.augment else None
        # self-blending makes training fakes; validation keeps its own labels and fakes as they are
        train_set = FrameDataset(train, preprocessing, augment, self_blend=data.fakes == "sbi", mask_size=mask_size)
        train_loader = _loader(train_set, micro, config, trainer, shuffle=True, paired=data.paired)
        val_set = FrameDataset(val, preprocessing, mask_size=mask_size)
        val_loader = _loader(val_set, micro, config, trainer, shuffle=False) if val else None
        last = out / "checkpoints" / "last.ckpt"
        trainer.fit(TrainingModule(model.train(), config, val_set.samples), train_loader, val_loader,
                    ckpt_path=str(last) if last.is_file() else None)
    if trainer.is_global_zero:
        finish_run(out, config, export.outcome(has_validation=bool(val)))
    return out


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's informational lines (tips, "GPU available: ...", restoring messages) held back while a
    run trains, and its own internal deprecation notice (about its pytree helper, nothing a user can act
    on); its other warnings still show."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning_utilities")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def _run_folder_for_launched_processes(folder: Path) -> Iterator[None]:
    """The processes Lightning launches for this run (DDP) inherit the folder chosen here."""
    before = os.environ.get(RUN_DIR_VARIABLE)
    os.environ[RUN_DIR_VARIABLE] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_DIR_VARIABLE, None)
        else:
            os.environ[RUN_DIR_VARIABLE] = before


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
