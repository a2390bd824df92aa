"""The ledger: one store of every measured cost (SQLite by default, PostgreSQL for a team)."""

from truecost.ledger.meter import Meter, describe_host
from truecost.ledger.records import RUN_KINDS, RUN_STATUSES, RequestRecord, RunRecord
from truecost.ledger.store import Ledger, resolve_url

__all__ = ["Ledger", "Meter", "RequestRecord", "RunRecord", "RUN_KINDS", "RUN_STATUSES", "describe_host",
           "resolve_url"]
