"""Data-parallel training under torchrun: the process group and the collectives GeneRAIN.train uses.

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (plus the rendezvous address) in every
process it starts; without them (or with ``WORLD_SIZE=1``) training is single-process and none of
this is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place among the torchrun processes."""

    world_size: int
    rank: int
    local_rank: int

    @classmethod
    def from_env(cls) -> Ranks:
        return cls(int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)),
                   int(os.environ.get("LOCAL_RANK", 0)))  # fmt: skip

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes files."""
        return self.rank == 0


def init_process_group(ranks: Ranks, device: torch.device) -> torch.device:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU) unless already joined; return this
    rank's device (``cuda:LOCAL_RANK`` on CUDA, one GPU per process)."""
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != ranks.world_size:
        raise RuntimeError(f"process group has {dist.get_world_size()} ranks, WORLD_SIZE says {ranks.world_size}")
    return device


def sum_across_ranks(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (every rank gets the result)."""
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def gather_objects(value) -> list:
    """``value`` of every rank, in rank order (every rank gets the list)."""
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def from_main(value):
    """Rank 0's ``value`` on every rank (the others pass anything, e.g. None)."""
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    dist.barrier()
