"""The ledger: one store of every measured cost (SQLite by default, PostgreSQL for a team).

Names are loaded on first use, so reading `truecost.ledger.records` does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truecost.ledger.meter import Meter, describe_host
    from truecost.ledger.records import RUN_KINDS, RUN_STATUSES, RequestRecord, RunRecord
    from truecost.ledger.store import Ledger, resolve_url

_HOME = {"Meter": "meter", "describe_host": "meter", "RUN_KINDS": "records", "RUN_STATUSES": "records",
         "RequestRecord": "records", "RunRecord": "records", "Ledger": "store", "resolve_url": "store"}

__all__ = ["Ledger", "Meter", "RUN_KINDS", "RUN_STATUSES", "RequestRecord", "RunRecord", "describe_host",
           "resolve_url"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'truecost.ledger' has no attribute {name!r}")
    return getattr(importlib.import_module(f"truecost.ledger.{_HOME[name]}"), name)
