"""Callbacks of a run: DeCLIP's lr/10-on-plateau schedule, and the export of the best and last models
in the project's format."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L

from ..hub.checkpoints import save_model
from .config import TrainConfig

log = logging.getLogger(__name__)


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

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None or not trainer.is_global_zero:
            return
        if float(score) > self.best:
            self.best = float(score)
            key = self.monitor.replace("/", "_")
            self._export(module, "best", trainer.current_epoch + 1, trainer, {key: self.best})

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._export(module, "last", trainer.current_epoch, trainer, {})

    def _export(self, module: L.LightningModule, name: str, epochs: int, trainer: L.Trainer, extra: dict) -> None:
        provenance = {"epochs_trained": epochs, "global_step": trainer.global_step,
                      "train_config": self.config.to_dict(), **extra}
        save_model(module.model, self.folder / name, provenance=provenance)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
