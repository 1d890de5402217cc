"""The Lightning module: cross-entropy + uniformity + alignment on the detector's features (slerp-augmented),
per-pixel BCE on the decoder's map, or both for the joint model; validation metrics gathered from every
rank; AdamW without decay on norms and biases and the papers' schedules. The model knows nothing of
training; what is trained follows from what it has (``has_head``, ``has_decoder``).
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from .. import metrics
from ..data.manifest import FAKE, Sample
from ..metrics import PIXEL_METRICS, map_score, pixel_scores
from ..models.model import ForensicsModel
from . import losses
from .config import TrainConfig


class TrainingModule(L.LightningModule):
    """Cross-entropy + uniformity + alignment on the detector's features (slerp-augmented), per-pixel
    BCE on the localizer's map, or both for the joint model; AdamW."""

    def __init__(self, model: ForensicsModel, config: TrainConfig, val_samples: list[Sample]):
        super().__init__()
        self.model = model
        self.config = config
        self.val_samples = val_samples
        self._val_outputs: list[dict[str, torch.Tensor]] = []

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        settings = self.config.loss
        labels = batch["label"]
        features, maps = self.model.forward_features(batch["image"], maps=self.model.has_decoder)
        parts: dict[str, tuple[float, torch.Tensor]] = {}
        if features is not None:
            if settings.slerp:
                features = losses.slerp_augment(features, labels, tuple(settings.slerp_range))
            logits, normalized = self.model.forward_head(features)
            parts["ce"] = (settings.cross_entropy, F.cross_entropy(logits.float(), labels,
                                                                   label_smoothing=settings.label_smoothing))
            if settings.uniformity:
                parts["uniformity"] = (settings.uniformity, losses.uniformity(normalized.float()))
            if settings.alignment:
                parts["alignment"] = (settings.alignment, losses.alignment(normalized.float(), labels))
        if maps is not None:
            parts["mask"] = (settings.mask, losses.mask_bce(maps.float(), batch["mask"], batch["has_mask"]))
        total = sum(weight * value for weight, value in parts.values())
        self.log("train/loss", total, prog_bar=True, batch_size=len(labels), sync_dist=True)
        for name, (_, value) in parts.items():
            self.log(f"train/{name}", value, batch_size=len(labels), sync_dist=True)
        return total

    def validation_step(self, batch: dict, batch_index: int) -> None:
        forward = self.model(batch["image"], maps=self.model.has_decoder)
        output = {"index": batch["index"], "label": batch["label"]}
        if self.model.has_head:
            output["p_fake"] = self.model.p_fake(forward)
        if forward.maps is not None:
            output.update(map_scores(torch.sigmoid(forward.maps.float())[:, 0], batch["mask"][:, 0] > 0.5,
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
        videos = metrics.Videos([self.val_samples[i].video for i in indices], labels)
        video_labels, video_scores = videos.labels, videos.scores(values)
        for level, (level_labels, level_scores) in {"frame": (labels, values),
                                                    "video": (video_labels, video_scores)}.items():
            for name, value in metrics.detection_metrics(level_labels, level_scores).items():
                self.log(f"val/{level}_{name}", float(value), sync_dist=False)
        self.log("val/video_mAP", float(metrics.average_precision(video_labels, video_scores)), prog_bar=True)

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
    return {**scores, "masked": masked.float(), "score": map_score(probabilities).float()}
