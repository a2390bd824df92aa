"""The request and dollar budget of one synth run: a request reserves its worst case before it is sent.

Endpoint requests reserve one request and the most they could cost (every prompt byte a token, `max_tokens` of
output) before they go out, and settle at their real price when they come back, so the money spent and the
money still in flight never pass the cap together. Local generation has no per-request price: its compute is
measured, and generation stops within one decoding step of the cap (`over_usd`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from truecost.estimate.pricing import ComputePrices, compute_cost_usd


@dataclass
class Reservation:
    """What one request set aside; `settle` turns it into what it really cost."""

    usd: float
    requests: int = 1


@dataclass
class Budget:
    """Caps (None: none) and what has been spent and reserved so far."""

    max_requests: int | None = None
    max_usd: float | None = None
    # Dollars of measured local compute so far (CPU and GPU time, priced by truecost.estimate).
    compute_usd: Callable[[], float] = field(default=lambda: 0.0)
    requests: int = 0
    api_usd: float = 0.0
    reserved_requests: int = 0
    reserved_usd: float = 0.0
    stop_reason: str | None = None

    def spent_usd(self) -> float:
        """API dollars settled plus local compute dollars so far."""
        return self.api_usd + self.compute_usd()

    def reserve(self, usd: float, requests: int = 1) -> Reservation | None:
        """Set aside `requests` and `usd`; None (and `stop_reason` set) when that would pass a cap."""
        if self.max_requests is not None and self.requests + self.reserved_requests + requests > self.max_requests:
            self.stop_reason = f"max_requests={self.max_requests} reached"
            return None
        if self.max_usd is not None and self.spent_usd() + self.reserved_usd + usd > self.max_usd:
            self.stop_reason = f"max_usd={self.max_usd} reached"
            return None
        self.reserved_requests += requests
        self.reserved_usd += usd
        return Reservation(usd, requests)

    def settle(self, reservation: Reservation, usd: float) -> None:
        """Release a reservation and count what the request really cost (0 for one that never reached a model)."""
        self.reserved_requests -= reservation.requests
        self.reserved_usd -= reservation.usd
        self.requests += reservation.requests
        self.api_usd += usd

    def over_usd(self) -> bool:
        """True once measured spending has reached the dollar cap (local generation stops there)."""
        if self.max_usd is not None and self.spent_usd() + self.reserved_usd >= self.max_usd:
            self.stop_reason = f"max_usd={self.max_usd} reached"
            return True
        return False

    def requests_left(self) -> int | None:
        """How many more requests may be reserved (None: no cap)."""
        if self.max_requests is None:
            return None
        return max(0, self.max_requests - self.requests - self.reserved_requests)


@dataclass
class Clock:
    """CPU and wall time since the run began, and the generators' GPU time, priced by truecost.estimate."""

    prices: ComputePrices
    generators: list[Any] = field(default_factory=list)
    cpu0: float = field(default_factory=time.process_time)
    wall0: float = field(default_factory=time.perf_counter)

    def cpu_seconds(self) -> float:
        return time.process_time() - self.cpu0

    def gpu_hours(self) -> float:
        return sum(float(getattr(g, "gpu_seconds", 0.0)) for g in self.generators) / 3600.0

    def compute_usd(self) -> float:
        return compute_cost_usd(self.cpu_seconds(), self.gpu_hours(), self.prices)

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.wall0
