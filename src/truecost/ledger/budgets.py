"""Budget counters in the ledger's database: reserve before spending, settle after, atomically across processes.

A counter is one budget (a key, team, user or tag) for one calendar period. `reserve` checks and raises the
reserved total of several counters in one transaction, all or none, with a conditional UPDATE per counter
(`... WHERE spent + reserved + amount <= limit`): PostgreSQL re-checks the condition under the row lock and
SQLite holds the database write lock for the whole transaction (`BEGIN IMMEDIATE`), so two gateways sharing a
ledger can never both take the last dollar. A counter seen for the first time starts from the spend the
requests table already holds for its scope and period, so budgets survive restarts and upgrades.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from truecost.ledger.schema import BudgetCounterRow, RequestRow

if TYPE_CHECKING:
    from truecost.ledger.store import Ledger

SCOPES = ("key", "team", "user", "tag")
_EPSILON_USD = 1e-12  # float sums of many small costs may land a hair above an exactly-met budget


@dataclass(frozen=True)
class BudgetCounter:
    """One budget's running total for one period [start, end) (end None: lifetime)."""

    scope: str  # key, team, user, tag
    name: str
    period: str
    start: datetime
    end: datetime | None
    limit_usd: float

    @property
    def id(self) -> str:
        """The counter's key, the same in every process."""
        return f"{self.scope}:{self.name}:{self.period}:{self.start.date().isoformat()}"


def tags_text(tags: list[str] | tuple[str, ...]) -> str:
    """Tags as stored in a request row: `,a,b,` (so one tag is found with LIKE '%,a,%' on any database)."""
    clean = [t.strip() for t in tags if t and t.strip()]
    return f",{','.join(clean)}," if clean else ""


def tags_list(text: str | None) -> list[str]:
    """The stored form back as a list."""
    return [t for t in (text or "").split(",") if t]


def scope_filter(scope: str, name: str) -> ColumnElement[bool]:
    """The WHERE clause selecting request rows of one key, team, user or tag."""
    if scope == "key":
        return RequestRow.api_key == name
    if scope == "team":
        return RequestRow.team == name
    if scope == "user":
        return RequestRow.user == name
    if scope == "tag":
        return RequestRow.tags.like(f"%,{name},%")
    raise ValueError(f"unknown budget scope {scope!r}; one of {', '.join(SCOPES)}")


def _seed_usd(session: Session, counter: BudgetCounter) -> float:
    query = select(func.coalesce(func.sum(RequestRow.cost_usd), 0.0)).where(
        scope_filter(counter.scope, counter.name), RequestRow.timestamp >= counter.start)
    if counter.end is not None:
        query = query.where(RequestRow.timestamp < counter.end)
    return float(session.scalar(query) or 0.0)


def seed_usd(ledger: Ledger, counter: BudgetCounter) -> float:
    """Dollars the requests table records for the counter's scope and period."""
    with ledger._session() as session:
        return _seed_usd(session, counter)


def _ensure_rows(ledger: Ledger, counters: list[BudgetCounter]) -> None:
    """Create missing counters (seeded from the requests table); a racing process creating it too is fine."""
    with ledger._session() as session:
        have = set(session.scalars(select(BudgetCounterRow.id).where(
            BudgetCounterRow.id.in_([c.id for c in counters]))))
    for counter in counters:
        if counter.id in have:
            continue
        try:
            with ledger._session() as session:
                session.add(BudgetCounterRow(id=counter.id, scope=counter.scope, name=counter.name,
                                             period=counter.period, period_start=counter.start,
                                             period_end=counter.end, spent_usd=_seed_usd(session, counter),
                                             reserved_usd=0.0))
        except IntegrityError:
            pass  # another gateway created it first, from the same rows


def reserve(ledger: Ledger, counters: list[BudgetCounter], amount_usd: float) -> str | None:
    """Reserve `amount_usd` on every counter or none; returns the id of the counter that refused (None: done)."""
    _ensure_rows(ledger, counters)
    refused: list[str] = []

    class _Refused(Exception):
        pass

    try:
        with ledger._session() as session:
            for counter in sorted(counters, key=lambda c: c.id):  # one lock order: no deadlocks between gateways
                row = BudgetCounterRow
                result = session.execute(
                    update(row).where(row.id == counter.id,
                                      row.spent_usd + row.reserved_usd + amount_usd <= counter.limit_usd + _EPSILON_USD)
                    .values(reserved_usd=row.reserved_usd + amount_usd).execution_options(synchronize_session=False))
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    refused.append(counter.id)
                    raise _Refused()  # roll back the counters already reserved in this transaction
    except _Refused:
        return refused[0]
    return None


def settle(ledger: Ledger, counters: list[BudgetCounter], reserved_usd: float, spent_usd: float) -> None:
    """Release a reservation and add the request's real cost, on every counter, in one transaction."""
    if not counters:
        return
    row = BudgetCounterRow
    with ledger._session() as session:
        for counter in sorted(counters, key=lambda c: c.id):
            session.execute(update(row).where(row.id == counter.id).values(
                reserved_usd=func.max(row.reserved_usd - reserved_usd, 0.0) if ledger.engine.dialect.name == "sqlite"
                else func.greatest(row.reserved_usd - reserved_usd, 0.0),
                spent_usd=row.spent_usd + spent_usd).execution_options(synchronize_session=False))


def totals(ledger: Ledger, counters: list[BudgetCounter]) -> dict[str, float]:
    """Spent plus reserved per counter id (0 for a counter never used)."""
    _ensure_rows(ledger, counters)
    with ledger._session() as session:
        rows = session.execute(select(BudgetCounterRow.id, BudgetCounterRow.spent_usd + BudgetCounterRow.reserved_usd)
                               .where(BudgetCounterRow.id.in_([c.id for c in counters])))
        found = {str(i): float(v) for i, v in rows}
    return {c.id: found.get(c.id, 0.0) for c in counters}
