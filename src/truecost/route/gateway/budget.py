"""API keys and per-key budgets: who may call the gateway and how many dollars each may still spend."""

from __future__ import annotations

import hmac
import threading
from typing import Any

from truecost.route.gateway.settings import KeySettings


class Budgets:
    """Maps a presented secret to a key name and tracks each key's spend against its budget.

    Spend counts from everything the ledger already holds for that key name, so a restart does not reset it.
    Requests already in flight when a key reaches its budget still complete, so spend can pass the budget by at
    most those requests' cost.
    """

    def __init__(self, keys: list[KeySettings], spent_usd: dict[str, float] | None = None) -> None:
        self._secrets: list[tuple[bytes, KeySettings]] = []
        for key in keys:
            secret = key.resolved_key()
            if secret:
                self._secrets.append((secret.encode(), key))
        self._limits = {k.name: k.budget_usd for k in keys}
        self._spent = {k.name: float((spent_usd or {}).get(k.name, 0.0)) for k in keys}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        """Whether clients must present one of the configured keys."""
        return bool(self._limits)

    def identify(self, secret: str | None) -> str | None:
        """The key name for `secret`, or None when it matches no configured key (constant-time compare)."""
        if not secret:
            return None
        given = secret.encode()
        found = None
        for stored, key in self._secrets:
            if hmac.compare_digest(stored, given):
                found = key.name
        return found

    def remaining_usd(self, name: str) -> float | None:
        """Dollars `name` may still spend (None: no budget)."""
        limit = self._limits.get(name)
        if limit is None:
            return None
        with self._lock:
            return limit - self._spent.get(name, 0.0)

    def exhausted(self, name: str) -> bool:
        """True once the key has spent its whole budget."""
        remaining = self.remaining_usd(name)
        return remaining is not None and remaining <= 0

    def charge(self, name: str, cost_usd: float) -> None:
        """Add a finished request's cost to the key's spend."""
        if name in self._spent:
            with self._lock:
                self._spent[name] += cost_usd

    def spent_usd(self) -> dict[str, float]:
        """Spend so far per key name."""
        with self._lock:
            return dict(self._spent)

    def limits_usd(self) -> dict[str, float | None]:
        """Budget per key name."""
        return dict(self._limits)


def spent_by_key_usd(ledger: Any, names: list[str]) -> dict[str, float]:
    """Dollars the ledger already records per key name, summed in the database."""
    if not names or ledger is None:
        return {}
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from truecost.ledger.schema import RequestRow

    query = (select(RequestRow.api_key, func.coalesce(func.sum(RequestRow.cost_usd), 0.0))
             .where(RequestRow.api_key.in_(names)).group_by(RequestRow.api_key))
    with Session(ledger.engine) as session:
        return {str(name): float(total) for name, total in session.execute(query)}
