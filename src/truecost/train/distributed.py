"""This process's place in a `torchrun` / `accelerate launch` job, and the few collectives truecost needs.

The Trainer (through accelerate) owns the process group; these helpers only read it. Every collective here must
be called by every rank at the same point, which the Trainer's callbacks guarantee (they run on every rank).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dist:
    """Rank, local rank and sizes from the launcher's environment (world_size 1 when run alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 meters, logs and seals checkpoints."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        """Read RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE as torchrun and accelerate set them."""
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        return cls(rank=int(env.get("RANK", "0")), local_rank=int(env.get("LOCAL_RANK", "0")), world_size=world,
                   local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(world))))


def _group_ready() -> bool:
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def all_sum(value: float) -> float:
    """`value` summed over every rank (itself when alone)."""
    if not _group_ready():
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item())


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any rank, so that ranks never disagree about stopping."""
    if not _group_ready():
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def gather(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's `item`, in rank order (a one-item list alone)."""
    if not _group_ready():
        return [item]
    import torch.distributed as dist

    items: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(items, item)
    return [dict(i) for i in items]


def this_process() -> dict[str, Any]:
    """Host and pid of this process, for the per-rank resources the ledger keeps."""
    return {"host": socket.gethostname(), "pid": os.getpid()}
