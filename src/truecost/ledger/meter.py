"""Meter a block of work into the ledger: wall time, CPU-seconds, GPU-hours, energy, tokens and dollars.

    with ledger.run("curate", "my-corpus", params={...}) as run:
        ...                      # do the work
        run.tokens += n          # what it processed
        run.results["kept"] = k  # anything worth keeping

The record is written as `running` on entry and closed on exit: `completed`, `stopped` (Ctrl-C, or a caller
that sets `run.status = "stopped"`, e.g. a budget) or `failed` (an exception, which is re-raised).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from truecost.estimate.pricing import ComputePrices, compute_cost_usd, compute_energy_kwh

if TYPE_CHECKING:
    from truecost.ledger.records import RunRecord
    from truecost.ledger.store import Ledger


def _cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (workers, subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def describe_host() -> str:
    """A short description of this machine's compute, e.g. `cpu: 2 cores x86_64`."""
    return f"cpu: {os.cpu_count() or 1} cores {platform.machine()}"


class Meter:
    """Context manager that opens, measures and closes one run record."""

    def __init__(self, ledger: Ledger, kind: str, name: str = "", *, params: dict[str, Any] | None = None,
                 hardware: str | None = None, parent_id: str | None = None,
                 prices: ComputePrices | None = None) -> None:
        self.ledger = ledger
        self.prices = prices or ComputePrices()
        self.record: RunRecord = ledger.start_run(kind, name, params=params, hardware=hardware or describe_host(),
                                                  parent_id=parent_id)
        self.tokens: int = 0
        self.gpu_hours: float = 0.0
        self.cost_usd: float | None = None  # None: priced from CPU-seconds and GPU-hours at exit
        self.energy_kwh: float | None = None
        self.status: str | None = None  # None: decided at exit from how the block ended
        self.results: dict[str, Any] = self.record.results
        self._wall0 = 0.0
        self._cpu0 = 0.0

    @property
    def id(self) -> str:
        """The run's id in the ledger."""
        return self.record.id

    def elapsed(self) -> tuple[float, float]:
        """(wall seconds, CPU-seconds) so far, for budgets checked during the work."""
        return time.perf_counter() - self._wall0, _cpu_seconds() - self._cpu0

    def __enter__(self) -> Meter:
        self._wall0 = time.perf_counter()
        self._cpu0 = _cpu_seconds()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        wall, cpu = self.elapsed()
        record = self.record
        record.wall_seconds = wall
        record.cpu_seconds = cpu
        record.gpu_hours = self.gpu_hours
        record.tokens = int(self.tokens)
        record.energy_kwh = (self.energy_kwh if self.energy_kwh is not None
                             else compute_energy_kwh(cpu, self.gpu_hours, self.prices))
        record.cost_usd = (self.cost_usd if self.cost_usd is not None
                           else compute_cost_usd(cpu, self.gpu_hours, self.prices))
        if exc_type is None:
            status = self.status or "completed"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "stopped"
        else:
            status = "failed"
            record.results.setdefault("error", f"{exc_type.__name__}: {exc}")
        self.ledger.finish_run(record, status)
