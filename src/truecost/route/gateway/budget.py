"""Budgets per key, team, user and tag, per calendar period, enforced by reservation.

Before a request goes upstream its worst case (prompt plus max_tokens at the dearest candidate's price) is
reserved on every budget it counts against, all or none, atomically; after the answer the reservation is settled
to the real cost. So concurrent requests can never spend past a budget. The counters live in one of three
stores behind one interface: this process's memory (one gateway), the ledger's database (several gateways on one
PostgreSQL or SQLite ledger) or Redis (a fleet).

A gateway killed between reserving and settling leaves its reservation held until the period ends; a clean
stop settles everything in flight first.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from truecost.ledger.budgets import BudgetCounter as Counter
from truecost.route.gateway.settings import BudgetSettings, KeySettings

if TYPE_CHECKING:
    from truecost.ledger import Ledger

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPSILON_USD = 1e-12  # float sums of many small costs may land a hair above an exactly-met budget


def utc_now() -> datetime:
    return datetime.now(UTC)


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime | None]:
    """[start, end) of the calendar period holding `now`, in UTC (weeks start on Monday); lifetime has no end."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day, day + timedelta(days=1)
    if period == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "monthly":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    if period == "lifetime":
        return EPOCH, None
    raise ValueError(f"unknown budget period {period!r}")


@dataclass(frozen=True)
class Caller:
    """Who a request is for: the key's name and team, the end user and the tags (all may be empty)."""

    key: str = ""
    team: str = ""
    user: str = ""
    tags: tuple[str, ...] = ()

    def names(self, scope: str) -> list[str]:
        """This caller's names in `scope`."""
        return {"key": [self.key], "team": [self.team], "user": [self.user], "tag": list(self.tags)}[scope]


def counters_for(budgets: list[BudgetSettings], caller: Caller, now: datetime) -> list[Counter]:
    """Every budget counter a request by `caller` at `now` counts against ("*" matches any name)."""
    out: dict[str, Counter] = {}
    for budget in budgets:
        for name in caller.names(budget.scope):
            if name and budget.name in ("*", name):
                start, end = period_bounds(budget.period, now)
                counter = Counter(budget.scope, name, budget.period, start, end, budget.usd)
                # A named budget and a "*" budget on the same name and period: the smaller one binds.
                if counter.id not in out or counter.limit_usd < out[counter.id].limit_usd:
                    out[counter.id] = counter
    return sorted(out.values(), key=lambda c: c.id)  # one lock order everywhere: no deadlocks between gateways


class BudgetStore(Protocol):
    """Where budget counters live; every method is atomic across all gateways sharing the store."""

    async def reserve(self, counters: list[Counter], amount_usd: float) -> Counter | None:
        """Reserve `amount_usd` on every counter, or on none; returns the counter that refused (None: reserved)."""
        ...

    async def settle(self, counters: list[Counter], reserved_usd: float, spent_usd: float) -> None:
        """Release a reservation and add what the request really cost."""
        ...

    async def spent(self, counters: list[Counter]) -> dict[str, float]:
        """Spent plus reserved per counter id."""
        ...


Seed = Callable[[Counter], float]  # spend the ledger already holds for a counter's scope and period


class MemoryBudgetStore:
    """Counters in this process (one gateway); seeded from the ledger's request rows on first use."""

    def __init__(self, seed: Seed | None = None) -> None:
        self.seed = seed
        self._totals: dict[str, list[float]] = {}  # id -> [spent, reserved]

    def _total(self, counter: Counter) -> list[float]:
        if counter.id not in self._totals:
            self._totals[counter.id] = [self.seed(counter) if self.seed else 0.0, 0.0]
        return self._totals[counter.id]

    async def reserve(self, counters: list[Counter], amount_usd: float) -> Counter | None:
        # No await between the check and the update: atomic on the event loop.
        for counter in counters:
            spent, reserved = self._total(counter)
            if spent + reserved + amount_usd > counter.limit_usd + _EPSILON_USD:
                return counter
        for counter in counters:
            self._total(counter)[1] += amount_usd
        return None

    async def settle(self, counters: list[Counter], reserved_usd: float, spent_usd: float) -> None:
        for counter in counters:
            total = self._total(counter)
            total[0] += spent_usd
            total[1] = max(0.0, total[1] - reserved_usd)

    async def spent(self, counters: list[Counter]) -> dict[str, float]:
        return {c.id: sum(self._total(c)) for c in counters}


class LedgerBudgetStore:
    """Counters in the ledger's database, through the ledger's budget API (on a worker thread)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def reserve(self, counters: list[Counter], amount_usd: float) -> Counter | None:
        refused = await anyio.to_thread.run_sync(self.ledger.reserve_budget, counters, amount_usd)
        return next((c for c in counters if c.id == refused), None)

    async def settle(self, counters: list[Counter], reserved_usd: float, spent_usd: float) -> None:
        await anyio.to_thread.run_sync(self.ledger.settle_budget, counters, reserved_usd, spent_usd)

    async def spent(self, counters: list[Counter]) -> dict[str, float]:
        return dict(await anyio.to_thread.run_sync(self.ledger.budget_totals, counters))


# Redis: each counter is a hash {s: spent, r: reserved}; the check and the reservation run as one script.
_RESERVE_LUA = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('HGET', key, 's') or '0')
  local reserved = tonumber(redis.call('HGET', key, 'r') or '0')
  if spent + reserved + amount > tonumber(ARGV[i + 1]) + 1e-12 then return i end
end
for i, key in ipairs(KEYS) do redis.call('HINCRBYFLOAT', key, 'r', amount) end
return 0
"""
_SETTLE_LUA = """
for i, key in ipairs(KEYS) do
  redis.call('HINCRBYFLOAT', key, 'r', -tonumber(ARGV[1]))
  redis.call('HINCRBYFLOAT', key, 's', tonumber(ARGV[2]))
end
return 0
"""


class RedisBudgetStore:
    """Counters in Redis, shared by every gateway using the same server; seeded from the ledger once."""

    def __init__(self, redis: Any, seed: Seed | None = None, prefix: str = "truecost:budget:") -> None:
        self.redis = redis
        self.seed = seed
        self.prefix = prefix
        self._seeded: set[str] = set()
        self._reserve = redis.register_script(_RESERVE_LUA)
        self._settle = redis.register_script(_SETTLE_LUA)

    async def _ensure(self, counters: list[Counter]) -> list[str]:
        keys = []
        for counter in counters:
            key = self.prefix + counter.id
            if counter.id not in self._seeded:
                seed = await anyio.to_thread.run_sync(self.seed, counter) if self.seed else 0.0
                await self.redis.hsetnx(key, "s", repr(float(seed)))
                if counter.end is not None:  # keep a finished period a day for the spend API, then drop it
                    await self.redis.expireat(key, int((counter.end + timedelta(days=1)).timestamp()))
                self._seeded.add(counter.id)
            keys.append(key)
        return keys

    async def reserve(self, counters: list[Counter], amount_usd: float) -> Counter | None:
        keys = await self._ensure(counters)
        refused = int(await self._reserve(keys=keys, args=[amount_usd, *(c.limit_usd for c in counters)]))
        return counters[refused - 1] if refused else None

    async def settle(self, counters: list[Counter], reserved_usd: float, spent_usd: float) -> None:
        keys = await self._ensure(counters)
        await self._settle(keys=keys, args=[reserved_usd, spent_usd])

    async def spent(self, counters: list[Counter]) -> dict[str, float]:
        keys = await self._ensure(counters)
        out = {}
        for counter, key in zip(counters, keys, strict=True):
            values = await self.redis.hmget(key, ["s", "r"])
            out[counter.id] = sum(float(v or 0) for v in values)
        return out


@dataclass
class Reservation:
    """What one request holds on its budgets until it settles."""

    counters: list[Counter]
    amount_usd: float
    settled: bool = False


class Budgets:
    """Keys (who may call), budgets (how much each caller may spend) and the store that counts spend."""

    def __init__(self, keys: list[KeySettings], budgets: list[BudgetSettings], store: BudgetStore,
                 clock: Clock = utc_now) -> None:
        self._secrets: list[tuple[bytes, KeySettings]] = []
        for key in keys:
            secret = key.resolved_key()
            if secret:
                self._secrets.append((secret.encode(), key))
        self.keys = {k.name: k for k in keys}
        self.budgets = budgets
        self.store = store
        self.clock = clock
        self._open_reservations: dict[int, Reservation] = {}

    @property
    def required(self) -> bool:
        """Whether clients must present one of the configured keys."""
        return bool(self.keys)

    def identify(self, secret: str | None) -> KeySettings | None:
        """The key for `secret`, or None when it matches no configured key (constant-time compare)."""
        if not secret:
            return None
        given = secret.encode()
        found = None
        for stored, key in self._secrets:
            if hmac.compare_digest(stored, given):
                found = key
        return found

    def counters(self, caller: Caller) -> list[Counter]:
        """The budget counters a request by `caller` counts against now."""
        return counters_for(self.budgets, caller, self.clock()) if self.budgets else []

    async def reserve(self, caller: Caller, amount_usd: float) -> Reservation | Counter:
        """Hold `amount_usd` on every budget of `caller`; the refusing counter when one would be exceeded."""
        counters = self.counters(caller)
        if counters:
            refused = await self.store.reserve(counters, amount_usd)
            if refused is not None:
                return refused
        reservation = Reservation(counters, amount_usd if counters else 0.0)
        self._open_reservations[id(reservation)] = reservation
        return reservation

    async def settle(self, reservation: Reservation, spent_usd: float) -> None:
        """Turn a reservation into the request's real cost (once)."""
        if reservation.settled:
            return
        reservation.settled = True
        self._open_reservations.pop(id(reservation), None)
        if reservation.counters:
            await self.store.settle(reservation.counters, reservation.amount_usd, spent_usd)

    async def settle_all(self) -> None:
        """On shutdown: release whatever is still reserved (at its reserved amount, the worst case)."""
        for reservation in list(self._open_reservations.values()):
            with anyio.CancelScope(shield=True):
                await self.settle(reservation, reservation.amount_usd)

    async def spent_usd(self) -> dict[str, float]:
        """Spend (settled plus reserved) per key budget in its current period, by key name."""
        out: dict[str, float] = {}
        for name in self.keys:
            counters = [c for c in self.counters(Caller(key=name)) if c.scope == "key"]
            if counters:
                out[name] = sum((await self.store.spent(counters)).values())
        return out


def make_store(ledger: Ledger | None, redis: Any) -> BudgetStore:
    """Redis when configured, else the ledger's database, else this process's memory."""
    seed = _ledger_seed(ledger) if ledger is not None else None
    if redis is not None:
        return RedisBudgetStore(redis, seed)
    if ledger is not None:
        return LedgerBudgetStore(ledger)
    return MemoryBudgetStore()


def _ledger_seed(ledger: Ledger) -> Seed:
    def seed(counter: Counter) -> float:
        return float(ledger.budget_seed_usd(counter))

    return seed
