"""Spend from the requests table, summed by key, team, user, tag, model or route over a time range.

Sums run in the database, except by tag: a request may carry several tags, so rows are read (only the columns
needed) and each request counts once under every tag it has.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, cast, func, select

from truecost.ledger.budgets import scope_filter, tags_list
from truecost.ledger.schema import RequestRow

if TYPE_CHECKING:
    from truecost.ledger.store import Ledger

GROUPS = ("key", "team", "user", "tag", "model", "route")
_COLUMNS = {"key": RequestRow.api_key, "team": RequestRow.team, "user": RequestRow.user,
            "model": RequestRow.model, "route": RequestRow.route}


@dataclass
class SpendRow:
    """What one group spent: requests, dollars, tokens, and what the cache saved."""

    group: str
    requests: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _measures() -> list[Any]:
    return [func.count(), func.coalesce(func.sum(RequestRow.cost_usd), 0.0),
            func.coalesce(func.sum(RequestRow.saved_usd), 0.0),
            func.coalesce(func.sum(cast(RequestRow.cache_hit, Integer)), 0),
            func.coalesce(func.sum(RequestRow.prompt_tokens), 0),
            func.coalesce(func.sum(RequestRow.completion_tokens), 0)]


def spend(ledger: Ledger, group_by: str, *, since: datetime | None = None, until: datetime | None = None,
          where: dict[str, str] | None = None) -> list[SpendRow]:
    """Spend per group within [since, until), only requests matching every `where` (scope -> name), dearest
    first."""
    if group_by not in GROUPS:
        raise ValueError(f"cannot group spend by {group_by!r}; one of {', '.join(GROUPS)}")
    conditions: list[Any] = [scope_filter(s, n) if s in ("key", "team", "user", "tag") else _COLUMNS[s] == n
                             for s, n in (where or {}).items()]
    if since is not None:
        conditions.append(RequestRow.timestamp >= since)
    if until is not None:
        conditions.append(RequestRow.timestamp < until)
    with ledger._session() as session:
        if group_by == "tag":
            rows = session.execute(select(RequestRow.tags, RequestRow.cost_usd, RequestRow.saved_usd,
                                          RequestRow.cache_hit, RequestRow.prompt_tokens,
                                          RequestRow.completion_tokens).where(*conditions))
            return _by_tag(rows)
        column = _COLUMNS[group_by]
        query = select(column, *_measures()).where(*conditions).group_by(column)
        out = [SpendRow(str(g or ""), int(n), float(c), float(s), int(h), int(p), int(o))
               for g, n, c, s, h, p, o in session.execute(query)]
    return sorted(out, key=lambda r: (-r.cost_usd, r.group))


def _by_tag(rows: Any) -> list[SpendRow]:
    out: dict[str, SpendRow] = defaultdict(lambda: SpendRow(""))
    for tags, cost, saved, hit, prompt, completion in rows:
        for tag in tags_list(tags):
            row = out[tag]
            row.group = tag
            row.requests += 1
            row.cost_usd += float(cost or 0)
            row.saved_usd += float(saved or 0)
            row.cache_hits += int(bool(hit))
            row.prompt_tokens += int(prompt or 0)
            row.completion_tokens += int(completion or 0)
    return sorted(out.values(), key=lambda r: (-r.cost_usd, r.group))
