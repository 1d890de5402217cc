"""One process's part in a command that may run sharded: several processes, one device each, on one or
more machines (Lightning starts the others by re-running the command line).

Every sharded command goes the same way: ``start`` gives this process its device, ``share`` (or the
predictor's ``shard``) its part of the inputs, and ``gather`` everyone's results, in input order, to the
main process, which writes them; the other processes end there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import click

from ..errors import UsageError
from .status import EXIT_OK

if TYPE_CHECKING:
    from ..inference.predictor import Predictor
    from ..inference.sharding import Devices, Shards

T = TypeVar("T")


def start(sharding: Devices, device: str) -> Processes:
    """This process's part: the whole run on ``device`` when one process does it all, else its rank among
    the processes launched now (``device`` then names their kind: auto, cpu, cuda). ``sharding`` holds
    --devices, --num-nodes and --strategy as given."""
    from ..inference.sharding import Devices, Shards

    devices = Devices.from_device(device, sharding.devices, sharding.num_nodes, sharding.strategy)
    _check_available(devices, device)
    return Processes(device, Shards(devices) if devices.sharded else None)


def _check_available(devices: Devices, device: str) -> None:
    """A device this machine lacks is a usage error now, before a model is loaded or processes start."""
    import torch

    from ..inference.runtime import resolve_device

    if not devices.sharded:
        resolve_device(device)
    elif device == "cuda" and torch.cuda.device_count() < devices.devices:
        raise UsageError(f"--devices {devices.devices} --device cuda asked for, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s); use fewer, or --device cpu")


@dataclass(frozen=True)
class Processes:
    """The device this process loads the model on, its share of the inputs, the gathering of results."""

    requested_device: str
    shards: Shards | None

    @property
    def device(self) -> str:
        return str(self.shards.device) if self.shards else self.requested_device

    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, ranks) for ``Predictor.iter_predict``, None when not sharded."""
        return (self.shards.rank, self.shards.world) if self.shards else None

    @property
    def progress(self) -> bool | None:
        """Only the main process draws a progress bar (None: the library's default)."""
        return self.shards.is_main if self.shards else None

    def load(self, model: str, precision: str, batch_size: int, decide: dict | None = None) -> Predictor:
        """The model on this process's device, deciding labels as ``decide`` says (threshold, operating_point,
        uncertain); the main process says on standard error where and how it runs."""
        from ..inference.predictor import load

        predictor = load(model, self.device, precision, batch_size, **(decide or {}))
        if self.progress is not False:
            calibrated = (f", calibrated (temperature {predictor.calibration.temperature:.3g})"
                          if predictor.calibration else "")
            named = "" if predictor.decision.name == f"{predictor.threshold:g}" else f" ({predictor.decision.name})"
            click.echo(f"clipforensics: model {model} on {predictor.device}, {predictor.precision}{calibrated}; "
                       f"fake from p_fake {predictor.threshold:.4g}{named}", err=True)
        return predictor

    def share(self, items: Sequence[T]) -> Sequence[T]:
        return self.shards.share(items) if self.shards else items

    def gather(self, mine: Iterable[T]) -> Iterable[T]:
        """Everyone's results, in input order: ``mine`` itself, still streaming, when not sharded. A process
        other than the main one ends here with status 0, its results handed to the main one."""
        if self.shards is None:
            return mine
        everyone = self.shards.gather(list(mine))
        if everyone is None:
            raise click.exceptions.Exit(EXIT_OK)
        return everyone
