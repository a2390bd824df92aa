"""The ledger: one store of every measured cost (SQLite by default, PostgreSQL for a team).

Names are loaded on first use, so reading `truecost.ledger.records` does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truecost.ledger.export import write_runs
    from truecost.ledger.meter import Meter, describe_host
    from truecost.ledger.records import RUN_KINDS, RUN_STATUSES, RequestRecord, RunRecord
    from truecost.ledger.store import Ledger, resolve_url
    from truecost.ledger.totals import RunTree, Spend, build_forest, total_spend

_HOME = {"Meter": "meter", "describe_host": "meter", "RUN_KINDS": "records", "RUN_STATUSES": "records",
         "RequestRecord": "records", "RunRecord": "records", "Ledger": "store", "resolve_url": "store",
         "RunTree": "totals", "Spend": "totals", "build_forest": "totals", "total_spend": "totals",
         "write_runs": "export"}

__all__ = ["Ledger", "Meter", "RUN_KINDS", "RUN_STATUSES", "RequestRecord", "RunRecord", "RunTree", "Spend",
           "build_forest", "describe_host", "resolve_url", "total_spend", "write_runs"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'truecost.ledger' has no attribute {name!r}")
    return getattr(importlib.import_module(f"truecost.ledger.{_HOME[name]}"), name)
