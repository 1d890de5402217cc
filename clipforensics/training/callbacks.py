"""Callbacks of a run: DeCLIP's lr/10-on-plateau schedule, the export of the best and last models in the
project's format, and the progress bar."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

from ..hub.checkpoints import save_model
from .config import TrainConfig

log = logging.getLogger(__name__)


class EpochProgress(TQDMProgressBar):
    """Lightning's bar, counting epochs as a reader does ("Epoch 3/3" in the last of three) and without
    the logger's version number (``v_num``), which says nothing about the run."""

    def on_train_epoch_start(self, trainer: L.Trainer, *_: object) -> None:
        # Lightning's own, but for the description, which it would show once as "Epoch 0" first
        if self._leave:
            self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(convert_inf(self.total_train_batches))
        self.train_progress_bar.initial = 0
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class PlateauDecay(L.Callback):
    """DeCLIP's schedule: when ``monitor`` has not improved for ``patience`` validations, the lr is
    divided by 10; training stops once it would fall below ``min_lr``."""

    def __init__(self, monitor: str, patience: int, min_lr: float):
        self.monitor, self.patience, self.min_lr = monitor, patience, min_lr
        self.best, self.stalled = -math.inf, 0

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None or not math.isfinite(float(score)):
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
    """Writes the best model (by the validation ``monitor``, higher is better) whenever it improves, and the
    last one when training ends, in the project's format. A score that is not a number (NaN: e.g.
    validation frames of a single class) is never a best; ``outcome()`` says which model to use and why."""

    def __init__(self, folder: Path, config: TrainConfig, monitor: str):
        self.folder = folder
        self.config = config
        self.monitor = monitor
        self.best = -math.inf
        self.best_epoch: int | None = None
        self.scores_seen = 0
        """Validations that reported the monitored metric (a number or not)."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None or not trainer.is_global_zero:
            return
        self.scores_seen += 1
        if math.isfinite(float(score)) and float(score) > self.best:
            self.best, self.best_epoch = float(score), trainer.current_epoch + 1
            key = self.monitor.replace("/", "_")
            self._export(module, "best", self.best_epoch, trainer, {key: self.best})

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._export(module, "last", trainer.current_epoch, trainer, {})

    def outcome(self, has_validation: bool) -> dict:
        """``{"best": {monitor, score, epoch}}`` when there is a best model, else ``{"best": None, "no_best":
        why}``."""
        if self.best_epoch is not None:
            return {"best": {"monitor": self.monitor, "score": self.best, "epoch": self.best_epoch}, "no_best": None}
        if not has_validation:
            why = "no validation set: data.val is empty"
        elif not self.scores_seen:
            why = f"validation never reported {self.monitor} (trainer.monitor)"
        else:
            why = (f"{self.monitor} was never a number: validation needs real and fake frames (and, for a "
                   "map, fakes with masks); check data.val, and trainer.limit_val_batches, which can cut "
                   "validation down to one class")
        return {"best": None, "no_best": why}

    def _export(self, module: L.LightningModule, name: str, epochs: int, trainer: L.Trainer, extra: dict) -> None:
        provenance = {"epochs_trained": epochs, "global_step": trainer.global_step,
                      "train_config": self.config.to_dict(), **extra}
        save_model(module.model, self.folder / name, provenance=provenance)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "scores_seen": self.scores_seen}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        self.best_epoch = state.get("best_epoch", 0 if math.isfinite(self.best) else None)
        self.scores_seen = state.get("scores_seen", 0)
