"""Where a scoring command's model runs: in this process (loaded here, the line on standard error saying where
and how), or on Ray (``--engine ray``: loaded by each replica)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..words import counted

if TYPE_CHECKING:
    from ..inference.predictor import Predictor
    from ..inference.ray_engine import Model, RayOptions


def load_here(model: str, device: str, precision: str, batch_size: int, decide: dict | None = None) -> Predictor:
    """The model on ``device`` (one this machine lacks is a usage error, before loading), deciding labels as
    ``decide`` says (threshold, operating_point, uncertain)."""
    from ..inference.predictor import load
    from ..inference.runtime import resolve_device

    resolve_device(device)
    predictor = load(model, device, precision, batch_size, **(decide or {}))
    calibrated = (f", calibrated (temperature {predictor.calibration.temperature:.3g})"
                  if predictor.calibration else "")
    named = "" if predictor.decision.name == f"{predictor.threshold:g}" else f" ({predictor.decision.name})"
    click.echo(f"clipforensics: model {model} on {predictor.device}, {predictor.precision}{calibrated}; "
               f"fake from p_fake {predictor.threshold:.4g}{named}", err=True)
    return predictor


def on_ray(model: str, device: str, precision: str, batch_size: int, ray: RayOptions,
           decide: dict | None = None) -> Model:
    """What each replica loads: the model on ``device`` (auto: a GPU when the replica was given one)."""
    from ..inference.ray_engine import Model

    where = f"Ray at {ray.address}" if ray.address else "Ray on this machine"
    click.echo(f"clipforensics: model {model} on {counted(ray.replicas, 'replica')} ({ray.cpus:g} CPU, "
               f"{ray.gpus:g} GPU each; {where}), device {device}, precision {precision}", err=True)
    return Model(model, device, precision, batch_size, dict(decide or {}))
