"""Inference over large inputs on several devices and machines, through Lightning Fabric.

Each rank takes every ``world``-th item (ranks get equal shares even when items differ in cost along
the list, as videos of one folder often do), and global rank 0 gathers the results back into item
order. Fabric starts one process per device by re-running the command line, so sharding is for
scripts such as the CLI; ``--num-nodes`` runs use the usual ``MASTER_ADDR``/``NODE_RANK`` variables.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from ..errors import UsageError

T = TypeVar("T")
ACCELERATORS = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Devices:
    """Where a sharded job runs: Lightning's accelerator, devices per node, nodes and strategy."""

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "ddp"

    @property
    def sharded(self) -> bool:
        return self.devices * self.num_nodes > 1

    @classmethod
    def from_device(cls, device: str, devices: int, num_nodes: int, strategy: str) -> Devices:
        """From the CLI: ``--device`` names the accelerator when ``--devices``/``--num-nodes`` ask for more."""
        if devices * num_nodes > 1 and device not in ACCELERATORS:
            raise UsageError(f"with --devices or --num-nodes, --device must be one of {', '.join(ACCELERATORS)} "
                             f"(each process takes its own device), not {device!r}")
        return cls(device, devices, num_nodes, strategy)


class Shards:
    """This process's rank in a launched job, its share of the items, and the gathering of results."""

    def __init__(self, devices: Devices):
        from lightning.fabric import Fabric

        self.fabric = Fabric(accelerator=devices.accelerator, devices=devices.devices, num_nodes=devices.num_nodes,
                             strategy=devices.strategy)
        self.fabric.launch()
        if self.device.type == "cpu":  # processes of one machine share its cores
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // devices.devices))

    @property
    def rank(self) -> int:
        return self.fabric.global_rank

    @property
    def world(self) -> int:
        return self.fabric.world_size

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank :: self.world])

    def gather(self, results: list[T]) -> list[T] | None:
        """Every rank's ``results`` (one per item of its ``share``) in item order on rank 0; None elsewhere."""
        shares: list[list[T]] | None = [[] for _ in range(self.world)] if self.is_main else None
        torch.distributed.gather_object(results, shares, dst=0)
        if shares is None:
            return None
        merged: list[T] = [None] * sum(len(share) for share in shares)  # type: ignore[list-item]
        for rank, share in enumerate(shares):
            merged[rank :: self.world] = share
        return merged
