"""The ledger: one store of every measured cost, SQLite by default, PostgreSQL by URL.

Every write is a short transaction; SQLite runs in WAL mode with `BEGIN IMMEDIATE` and a busy timeout so that
several processes can append at once without losing a row. Opening a ledger creates or migrates its tables
(`migrations`) and marks runs whose process died as `lost` (`reap`). Callers use this class's methods only; the
tables, the engine and the sessions are the ledger's own (a test checks that no other package touches them).
New queries (spend by key, team or period, budget counters) belong here, beside a migration for their columns.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from truecost.errors import UserError
from truecost.ledger.liveness import this_host, why_lost
from truecost.ledger.records import RUN_KINDS, RUN_STATUSES, RequestRecord, RunRecord
from truecost.ledger.schema import SCHEMA_VERSION, MetaRow, RequestRow, RunRow
from truecost.ledger.totals import MEASURES, RunTree, build_forest

if TYPE_CHECKING:
    from truecost.estimate.pricing import ComputePrices
    from truecost.ledger.budgets import BudgetCounter
    from truecost.ledger.meter import Meter
    from truecost.ledger.spend import SpendRow

_log = logging.getLogger(__name__)

DEFAULT_LEDGER_PATH = Path(".truecost") / "ledger.db"
ENV_VAR = "TRUECOST_LEDGER"
# `scheme:` of two letters or more (a one-letter one is a Windows drive, `C:\ledger.db`).
_LOOKS_LIKE_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def resolve_url(url: str | None = None, config_url: str | None = None) -> str:
    """Pick the ledger URL: explicit > $TRUECOST_LEDGER > truecost.toml > `.truecost/ledger.db` in the cwd.

    A bare path is taken as a SQLite file; `postgresql://` is routed to the psycopg 3 driver. Something that
    starts like a URL but is not one (`sqlite:/x.db`) is a UserError, not a file in a folder named `sqlite:`.
    """
    chosen = url or os.environ.get(ENV_VAR) or config_url
    if not chosen:
        return f"sqlite:///{DEFAULT_LEDGER_PATH}"
    if "://" not in chosen:
        if _LOOKS_LIKE_SCHEME.match(chosen):
            raise UserError(f"ledger URL {chosen!r} is malformed: write sqlite:///relative/path.db, "
                            "sqlite:////absolute/path.db, postgresql://user@host/db, or a plain file path "
                            "(./name if it contains a colon)")
        return f"sqlite:///{chosen}"
    if chosen.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + chosen.split("://", 1)[1]
    return chosen


def _safe(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything the ledger stores is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Ledger:
    """A handle on one ledger database; cheap to create, safe to use from several processes at once."""

    def __init__(self, url: str | None = None, *, config_url: str | None = None, reap: bool = True) -> None:
        """Open (creating or migrating) the ledger; `reap` also marks runs whose process died as `lost`."""
        self.url = resolve_url(url, config_url)
        self.engine = self._make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._ensure_schema()
        if reap:
            try:
                self.reap()
            except (UserError, SQLAlchemyError) as exc:  # a read-only user can still read; the next open reaps
                _log.info("ledger %s: could not mark lost runs: %s", self.display_url, _first_line(exc))

    # -- connection -------------------------------------------------------------------------------------
    @staticmethod
    def _make_engine(url: str) -> Engine:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise UserError(f"ledger URL {url!r} is not a database URL (e.g. sqlite:///ledger.db, "
                            "postgresql://user@host/db)") from exc
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise UserError(f"ledger URL {_safe(url)}: only sqlite and postgresql are supported")
        try:
            if backend == "sqlite":
                database = parsed.database or ""
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"timeout": 60})
                _tune_sqlite(engine)
            else:
                engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        except NoSuchModuleError as exc:
            raise UserError(f"ledger URL {_safe(url)}: unknown database driver ({exc})") from exc
        except ModuleNotFoundError as exc:
            raise UserError(f"ledger URL {_safe(url)} needs {exc.name}: pip install 'truecost[postgres]'") from exc
        except OSError as exc:
            raise UserError(f"ledger URL {_safe(url)}: cannot create the database file ({exc})") from exc
        return engine

    def _ensure_schema(self) -> None:
        """Create or migrate the tables (see `truecost.ledger.migrations`) and refuse a newer schema."""
        from truecost.ledger.migrations import upgrade

        for attempt in range(5):
            try:
                with self.engine.begin() as connection:
                    found, _ = upgrade(connection)
                break
            except DBAPIError as exc:
                message = _first_line(exc)
                # SQLite can report a busy file while two processes switch a new database to WAL: look again.
                if "locked" not in message or attempt == 4:
                    raise UserError(f"cannot open the ledger at {self.display_url}: {message}") from exc
                time.sleep(0.2 * (attempt + 1))
        if found > SCHEMA_VERSION:
            raise UserError(
                f"the ledger at {self.display_url} has schema v{found}, newer than this truecost "
                f"(v{SCHEMA_VERSION}); upgrade truecost"
            )

    @contextmanager
    def _session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except OperationalError as exc:
            raise UserError(f"ledger {self.display_url}: {_first_line(exc)}") from exc
        finally:
            session.close()

    @property
    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._session() as session:
            row = session.get(MetaRow, "schema_version")
            return int(row.value) if row else SCHEMA_VERSION

    @property
    def display_url(self) -> str:
        """The ledger's URL with any password hidden, for messages and reports."""
        return _safe(self.url)

    @property
    def in_memory(self) -> bool:
        """Whether the database lives only in this process (SQLite without a file): gone when the process ends."""
        return self.engine.url.get_backend_name() == "sqlite" and self.engine.url.database in (None, "", ":memory:")

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- runs -------------------------------------------------------------------------------------------
    def start_run(self, kind: str, name: str = "", *, params: dict[str, Any] | None = None,
                  hardware: str = "", parent_id: str | None = None, host: str | None = None,
                  pid: int | None = None, heartbeat_seconds: float | None = None) -> RunRecord:
        """Open a run record with status `running`, so that a crash still leaves a trace.

        The run belongs to this process (`host`/`pid` default to it) and counts as alive at its start; a run
        whose owner promises a heartbeat every `heartbeat_seconds` (as `Meter` does) is marked `lost` when the
        beats stop, one without a heartbeat only when its process is gone or after a long silence (see `reap`).
        """
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; one of {', '.join(RUN_KINDS)}")
        started = _now()
        record = RunRecord(id=str(uuid.uuid4()), kind=kind, name=name, started_at=started, hardware=hardware,
                           parent_id=parent_id, params=dict(params or {}), host=host or this_host(),
                           pid=os.getpid() if pid is None else pid, heartbeat_at=started,
                           heartbeat_seconds=heartbeat_seconds)
        self.save_run(record)
        return record

    def save_run(self, record: RunRecord) -> RunRecord:
        """Insert or update a whole run record."""
        if record.status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {record.status!r}; one of {', '.join(RUN_STATUSES)}")
        values = {f.name: getattr(record, f.name) for f in fields(RunRecord)}
        values["tokens"] = int(values["tokens"])
        with self._session() as session:
            session.merge(RunRow(**values))
        return record

    def finish_run(self, record: RunRecord, status: str = "completed") -> RunRecord:
        """Close a run with its final status and end time, and store its measures."""
        record.status = status
        record.ended_at = record.ended_at or _now()
        return self.save_run(record)

    def get_run(self, run_id: str) -> RunRecord:
        """One run by id, or by a unique id prefix; UserError when none or several match."""
        with self._session() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                rows = session.scalars(select(RunRow).where(RunRow.id.like(f"{run_id}%")).limit(2)).all()
                if len(rows) != 1:
                    raise UserError(f"no run {run_id!r} in the ledger" if not rows else
                                    f"run id prefix {run_id!r} is ambiguous")
                row = rows[0]
            return _run_from_row(row)

    def list_runs(self, *, kind: str | None = None, status: str | None = None, since: datetime | None = None,
                  limit: int | None = None, parent_id: str | None = None) -> list[RunRecord]:
        """Runs, newest first, optionally filtered (`parent_id`: the direct children of that run)."""
        query = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id)
        if kind:
            query = query.where(RunRow.kind == kind)
        if status:
            query = query.where(RunRow.status == status)
        if since:
            query = query.where(RunRow.started_at >= since)
        if parent_id:
            query = query.where(RunRow.parent_id == parent_id)
        if limit:
            query = query.limit(limit)
        with self._session() as session:
            return [_run_from_row(row) for row in session.scalars(query)]

    def children(self, run_id: str) -> list[RunRecord]:
        """The runs opened under `run_id`, oldest first."""
        return self.list_runs(parent_id=run_id)[::-1]

    def tree(self, run_id: str) -> RunTree:
        """A run with all its descendants; `RunTree.total` is the spend of the whole tree, each CPU-second once."""
        root = self.get_run(run_id)
        runs, frontier = [root], [root.id]
        while frontier:
            query = select(RunRow).where(RunRow.parent_id.in_(frontier)).order_by(RunRow.started_at, RunRow.id)
            with self._session() as session:
                found = [_run_from_row(row) for row in session.scalars(query)]
            seen = {run.id for run in runs}
            found = [run for run in found if run.id not in seen]  # a cycle would otherwise never end
            runs.extend(found)
            frontier = [run.id for run in found]
        return next((node for node in build_forest(runs) if node.run.id == root.id), RunTree(root))

    def count_runs(self) -> int:
        """How many runs the ledger holds."""
        with self._session() as session:
            return int(session.scalar(select(func.count()).select_from(RunRow)) or 0)

    def heartbeat(self, record: RunRecord, *, results: bool = False) -> bool:
        """Store a running run's spend so far (and its results if `results`) and that it is alive now.

        A run that `reap` marked `lost` while its process was in fact alive is `running` again. Returns False, and
        writes nothing, when the run is already closed.
        """
        now = _now()
        values: dict[str, Any] = {name: getattr(record, name) for name in MEASURES}
        values.update(tokens=int(record.tokens), heartbeat_at=now, status="running", ended_at=None)
        if results:
            values["results"] = dict(record.results)
        query = (update(RunRow).where(RunRow.id == record.id, RunRow.status.in_(("running", "lost")))
                 .values(**values))
        with self._session() as session:
            written = session.execute(query).rowcount == 1  # type: ignore[attr-defined]
        if written:
            record.heartbeat_at = now
        return written

    def reap(self, *, now: datetime | None = None) -> list[RunRecord]:
        """Mark `running` runs whose process is gone as `lost`, keeping the spend they last flushed; returns them.

        See `truecost.ledger.liveness` for the rules. The run ends when it was last seen alive.
        """
        now = now or _now()
        host = this_host()
        with self._session() as session:
            running = [_run_from_row(row) for row in session.scalars(select(RunRow).where(RunRow.status == "running"))]
        lost = []
        for run in running:
            reason = why_lost(run, now=now, host=host)
            if reason is None:
                continue
            last_seen = run.heartbeat_at or run.started_at
            results = {**run.results, "lost": {"reason": reason, "marked_at": now.isoformat()}}
            unchanged = (RunRow.heartbeat_at == run.heartbeat_at if run.heartbeat_at is not None
                         else RunRow.heartbeat_at.is_(None))
            query = (update(RunRow).where(RunRow.id == run.id, RunRow.status == "running", unchanged)
                     .values(status="lost", ended_at=last_seen, results=results))
            with self._session() as session:
                if session.execute(query).rowcount == 1:  # type: ignore[attr-defined]  # else it beat meanwhile
                    run.status, run.ended_at, run.results = "lost", last_seen, results
                    lost.append(run)
        return lost

    @contextmanager
    def run(self, kind: str, name: str = "", *, params: dict[str, Any] | None = None,
            hardware: str | None = None, parent_id: str | None = None,
            prices: ComputePrices | None = None, heartbeat_seconds: float | None = None) -> Iterator[Meter]:
        """Meter a block of work: see `truecost.ledger.meter.Meter`."""
        from truecost.ledger.meter import Meter

        meter = Meter(self, kind, name, params=params, hardware=hardware, parent_id=parent_id, prices=prices,
                      heartbeat_seconds=heartbeat_seconds)
        with meter:
            yield meter

    # -- requests ---------------------------------------------------------------------------------------
    def log_request(self, record: RequestRecord) -> int:
        """Append one gateway request; returns its row id."""
        with self._session() as session:
            row = _request_row(record)
            session.add(row)
            session.flush()
            record.id = row.id
            return row.id

    def log_requests(self, records: list[RequestRecord]) -> int:
        """Append several gateway requests in one transaction (a busy gateway writes in batches); returns how many."""
        rows = [_request_row(r) for r in records]
        if not rows:
            return 0
        with self._session() as session:
            session.add_all(rows)
            session.flush()
            for record, row in zip(records, rows, strict=True):
                record.id = row.id
        return len(rows)

    def list_requests(self, *, since: datetime | None = None, until: datetime | None = None,
                      model: str | None = None, run_id: str | None = None,
                      limit: int | None = None) -> list[RequestRecord]:
        """Gateway requests in time order, optionally within [since, until)."""
        query = select(RequestRow).order_by(RequestRow.timestamp, RequestRow.id)
        if since:
            query = query.where(RequestRow.timestamp >= since)
        if until:
            query = query.where(RequestRow.timestamp < until)
        if model:
            query = query.where(RequestRow.model == model)
        if run_id:
            query = query.where(RequestRow.run_id == run_id)
        if limit:
            query = query.limit(limit)
        with self._session() as session:
            return [_request_from_row(row) for row in session.scalars(query)]

    # -- spend and budgets (truecost.ledger.spend, truecost.ledger.budgets) ------------------------------------
    def spend(self, group_by: str, *, since: datetime | None = None, until: datetime | None = None,
              where: dict[str, str] | None = None) -> list[SpendRow]:
        """Request spend per key, team, user, tag, model or route within [since, until): `SpendRow`s."""
        from truecost.ledger.spend import spend

        return spend(self, group_by, since=since, until=until, where=where)

    def reserve_budget(self, counters: list[BudgetCounter], amount_usd: float) -> str | None:
        """Reserve `amount_usd` on every `BudgetCounter` or none; the refusing counter's id, or None."""
        from truecost.ledger.budgets import reserve

        return reserve(self, counters, amount_usd)

    def settle_budget(self, counters: list[BudgetCounter], reserved_usd: float, spent_usd: float) -> None:
        """Release a reservation and add the real cost."""
        from truecost.ledger.budgets import settle

        settle(self, counters, reserved_usd, spent_usd)

    def budget_totals(self, counters: list[BudgetCounter]) -> dict[str, float]:
        """Spent plus reserved per counter id."""
        from truecost.ledger.budgets import totals

        return totals(self, counters)

    def budget_seed_usd(self, counter: BudgetCounter) -> float:
        """What the requests table records for a counter's scope and period (a new counter starts here)."""
        from truecost.ledger.budgets import seed_usd

        return seed_usd(self, counter)


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line only: enough to act on, no traceback."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _run_from_row(row: RunRow) -> RunRecord:
    record = RunRecord(**{f.name: getattr(row, f.name) for f in fields(RunRecord)})
    record.started_at = _aware(record.started_at) or record.started_at
    record.ended_at = _aware(record.ended_at)
    record.heartbeat_at = _aware(record.heartbeat_at)
    record.params = dict(record.params or {})
    record.results = dict(record.results or {})
    return record


def _request_row(record: RequestRecord) -> RequestRow:
    from truecost.ledger.budgets import tags_text

    values = {f.name: getattr(record, f.name) for f in fields(RequestRecord) if f.name != "id"}
    values["tags"] = tags_text(record.tags)
    return RequestRow(**values)


def _request_from_row(row: RequestRow) -> RequestRecord:
    from truecost.ledger.budgets import tags_list

    record = RequestRecord(**{f.name: getattr(row, f.name) for f in fields(RequestRecord)})
    record.timestamp = _aware(record.timestamp) or record.timestamp
    record.extra = dict(record.extra or {})
    record.tags = tags_list(row.tags)
    return record


def _tune_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE: concurrent writers wait for each other instead of failing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


__all__ = ["Ledger", "resolve_url", "SQLAlchemyError"]
