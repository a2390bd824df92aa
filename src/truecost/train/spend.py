"""What a training run has spent, and whether that reaches its budget: plain values and pure functions.

A run may be several sessions (resumed after a stop, a crash or a kill -9); `Spend` is always cumulative over
them. Dollars come from `truecost.estimate.compute_cost_usd`, never from arithmetic here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truecost.estimate.pricing import ComputePrices
    from truecost.train.config import BudgetSettings


@dataclass
class Spend:
    """What the run has used so far, including earlier sessions of a resumed run."""

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gpu_hours: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spend:
        """Read back `asdict(spend)`; unknown keys are ignored, missing ones are zero."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    def plus(self, other: Spend) -> Spend:
        """Field by field sum (sessions added together)."""
        return Spend(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    def minus(self, other: Spend) -> Spend:
        """Field by field difference (this session = cumulative - earlier sessions)."""
        return Spend(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in dataclasses.fields(self)})

    def most(self, other: Spend) -> Spend:
        """Field by field maximum: the larger of two accounts of the same sessions never undercounts."""
        return Spend(**{f.name: max(getattr(self, f.name), getattr(other, f.name))
                        for f in dataclasses.fields(self)})


def budget_exceeded(budget: BudgetSettings, spend: Spend) -> str | None:
    """The name of the first budget limit reached, or None."""
    checks = (("max_usd", budget.max_usd, spend.cost_usd),
              ("max_gpu_hours", budget.max_gpu_hours, spend.gpu_hours),
              ("max_minutes", budget.max_minutes, spend.wall_seconds / 60.0),
              ("max_tokens", budget.max_tokens, spend.tokens))
    for name, limit, used in checks:
        if limit is not None and used >= limit:
            return name
    return None


class SpendClock:
    """This session's wall time, CPU time (summed over every process of the job) and GPU-hours, priced, on top
    of what earlier sessions spent (`prior`)."""

    def __init__(self, prices: ComputePrices, gpus_per_job: int) -> None:
        self.prices = prices
        self.gpus = gpus_per_job
        self.prior = Spend()
        self._wall0: float | None = None
        self._cpu0 = 0.0

    @property
    def started(self) -> bool:
        """True once `start()` ran."""
        return self._wall0 is not None

    def start(self) -> None:
        """Start this session's clocks (idempotent)."""
        if self._wall0 is None:
            self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def own_cpu_seconds(self) -> float:
        """CPU time of this process alone in this session."""
        return time.process_time() - self._cpu0

    def read(self, tokens: int, sum_over_ranks: Callable[[float], float] = float) -> Spend:
        """Cumulative spend now; `tokens` is the run's cumulative count. Under several processes
        `sum_over_ranks` adds every process's CPU time (a collective: every rank must call it)."""
        from truecost.estimate.pricing import compute_cost_usd

        self.start()
        assert self._wall0 is not None
        wall = time.perf_counter() - self._wall0
        cpu = sum_over_ranks(time.process_time() - self._cpu0)
        gpu_hours = wall * self.gpus / 3600.0
        session = Spend(wall_seconds=wall, cpu_seconds=cpu, gpu_hours=gpu_hours, tokens=0,
                        cost_usd=compute_cost_usd(cpu, gpu_hours, self.prices))
        total = self.prior.plus(session)
        total.tokens = max(int(tokens), self.prior.tokens)
        return total
