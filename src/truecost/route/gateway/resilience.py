"""Retries with exponential backoff and full jitter, and a circuit breaker per upstream.

A retryable failure (timeout, refused connection, 408/409/429/5xx, a stream that stalls before its first event)
is retried on the same upstream up to `max_retries` times, waiting a random time in [0, min(cap, base * 2^n)]
("full jitter": clients that failed together do not retry together), or the upstream's own Retry-After when it
sent one and it is shorter than the cap. After `failures` failed calls in a row an upstream is *open*: skipped
for `cooldown_s`, then *half-open*: one request probes it, and its success closes the breaker again while a
failure opens it for another cooldown. State is per gateway process.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from truecost.route.gateway.settings import BreakerSettings, RetrySettings


def backoff_s(attempt: int, settings: RetrySettings, retry_after_s: float | None = None,
              rng: random.Random | None = None) -> float:
    """How long to wait before retry number `attempt` (0-based)."""
    cap = min(settings.backoff_max_s, settings.backoff_base_s * 2 ** attempt)
    if retry_after_s is not None:
        return min(retry_after_s, settings.backoff_max_s)
    return (rng or random).uniform(0.0, cap)


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class CircuitBreakers:
    """Closed / open / half-open per upstream name."""

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._states: dict[str, _State] = {}

    def _state(self, name: str) -> _State:
        return self._states.setdefault(name, _State())

    def allow(self, name: str) -> bool:
        """Whether a call to `name` may go out now (a half-open upstream lets one probe through)."""
        state = self._state(name)
        if state.failures < self.settings.failures:
            return True
        if self.clock() < state.open_until or state.probing:
            return False
        state.probing = True
        return True

    def state(self, name: str) -> str:
        """closed, open or half-open."""
        state = self._state(name)
        if state.failures < self.settings.failures:
            return "closed"
        return "open" if self.clock() < state.open_until else "half-open"

    def success(self, name: str) -> None:
        state = self._state(name)
        state.failures, state.probing = 0, False

    def failure(self, name: str) -> None:
        state = self._state(name)
        state.failures += 1
        state.probing = False
        if state.failures >= self.settings.failures:
            state.open_until = self.clock() + self.settings.cooldown_s

    def release(self, name: str) -> None:
        """A probe that ended without a verdict (the client left): let the next request probe."""
        self._state(name).probing = False

    def reopens_in_s(self, names: list[str]) -> float:
        """Seconds until the first of `names` may be probed again."""
        now = self.clock()
        return max(0.0, min(self._state(n).open_until - now for n in names)) if names else 0.0
