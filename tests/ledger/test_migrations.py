"""Schema migrations: a v1 ledger with data in it opens under today's code with every row kept, ends up with the same
schema as a new ledger, and several processes opening it at once migrate it exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, Text, create_engine, inspect
from sqlalchemy.engine import Engine

from tests.ledger.conftest import fresh_postgres_db
from truecost.ledger import Ledger
from truecost.ledger.migrations import MIGRATIONS
from truecost.ledger.schema import SCHEMA_VERSION
from truecost.ledger.store import resolve_url

# A frozen copy of the v1 tables, as `truecost.ledger.schema` created them before migrations existed.
V1 = MetaData()
V1_RUNS = Table(
    "runs", V1,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("hardware", String(200), nullable=False),
    *(Column(name, Float, nullable=False) for name in ("wall_seconds", "cpu_seconds", "gpu_hours", "energy_kwh",
                                                       "cost_usd")),
    Column("tokens", Integer, nullable=False),
    Column("parent_id", String(36), nullable=True, index=True),
    Column("params", JSON, nullable=False),
    Column("results", JSON, nullable=False),
)
V1_REQUESTS = Table(
    "requests", V1,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=True, index=True),
    Column("timestamp", DateTime(timezone=True), nullable=False, index=True),
    Column("route", String(100), nullable=False),
    Column("model", String(200), nullable=False, index=True),
    Column("api_key", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("router_score", Float, nullable=True),
    Column("quality", Float, nullable=True),
    Column("prompt", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("extra", JSON, nullable=False),
)
V1_META = Table("ledger_meta", V1, Column("key", String(64), primary_key=True),
                Column("value", String(200), nullable=False))

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
_ZERO = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "gpu_hours": 0.0, "energy_kwh": 0.0, "cost_usd": 0.0, "tokens": 0}
# A v1 demo parent measured its two children again (same process): 10 CPU-s of which 3 + 5 were theirs.
V1_RUN_ROWS: list[dict[str, Any]] = [
    {**_ZERO, "id": "p" * 36, "kind": "demo", "name": "demo", "status": "completed", "started_at": T0,
     "ended_at": T0 + timedelta(seconds=12), "hardware": "cpu: 2", "wall_seconds": 12.0, "cpu_seconds": 10.0,
     "energy_kwh": 0.01, "cost_usd": 0.1, "parent_id": None, "params": {"scale": "tiny"},
     "results": {"levers": [{"name": "x", "saving_usd": 1.0}]}},
    {**_ZERO, "id": "c" * 36, "kind": "curate", "name": "child curate", "status": "completed", "started_at": T0,
     "ended_at": T0, "hardware": "cpu: 2", "wall_seconds": 4.0, "cpu_seconds": 3.0, "energy_kwh": 0.003,
     "cost_usd": 0.03, "tokens": 1000, "parent_id": "p" * 36, "params": {}, "results": {"kept": 7}},
    {**_ZERO, "id": "t" * 36, "kind": "train", "name": "child train", "status": "completed", "started_at": T0,
     "ended_at": T0, "hardware": "cpu: 2", "wall_seconds": 6.0, "cpu_seconds": 5.0, "energy_kwh": 0.005,
     "cost_usd": 0.05, "tokens": 2048, "parent_id": "p" * 36, "params": {"lr": 0.001}, "results": {}},
    {**_ZERO, "id": "r" * 36, "kind": "serve", "name": "still running", "status": "running", "started_at": T0,
     "ended_at": None, "hardware": "", "parent_id": None, "params": {}, "results": {}},
]
V1_REQUEST_ROWS: list[dict[str, Any]] = [
    {"run_id": "r" * 36, "timestamp": T0 + timedelta(seconds=i), "route": "auto", "model": f"m{i % 2}",
     "api_key": "team-a", "status": "ok", "prompt_tokens": 10 + i, "completion_tokens": 5, "cost_usd": 0.001 * i,
     "latency_ms": 12.5, "router_score": 0.25 if i else None, "quality": None, "prompt": f"hello {i}",
     "output": "hi", "extra": {"attempts": i}}
    for i in range(3)
]


def _engine(url: str) -> Engine:
    return create_engine(resolve_url(url))


def _restamp() -> None:
    """Move the rows' times so that T0 is 30 seconds before now. The "still running" run has no heartbeat, and a
    silent run that started long ago is reaped as lost: the rows must be fresh when a test writes them, not when
    pytest imported this module (on a loaded machine that can be half an hour earlier)."""
    shift = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30) - V1_RUN_ROWS[0]["started_at"]
    for row in V1_RUN_ROWS + V1_REQUEST_ROWS:
        for key in ("started_at", "ended_at", "timestamp"):
            if row.get(key) is not None:
                row[key] += shift


def make_v1_ledger(url: str) -> None:
    """A v1 ledger as main wrote it before migrations existed, with runs and requests in it."""
    _restamp()
    engine = _engine(url)
    with engine.begin() as connection:
        V1.create_all(connection)
        connection.execute(V1_META.insert().values(key="schema_version", value="1"))
        connection.execute(V1_RUNS.insert(), V1_RUN_ROWS)
        connection.execute(V1_REQUESTS.insert(), V1_REQUEST_ROWS)
    engine.dispose()


def _shape(url: str) -> dict[str, Any]:
    """Tables, columns (name and nullability) and indexes (name and columns) of a ledger database."""
    engine = _engine(url)
    insp = inspect(engine)
    shape = {name: ({c["name"]: c["nullable"] for c in insp.get_columns(name)},
                    {i["name"]: tuple(i["column_names"]) for i in insp.get_indexes(name)})
             for name in insp.get_table_names()}  # every table: a step that forgets one fails here
    engine.dispose()
    return shape


def _other_db(ledger_url: str, tmp_path: Path, postgres: str | None) -> str:
    if ledger_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    assert postgres is not None
    return fresh_postgres_db(postgres)


def test_steps_lead_from_v1_to_the_current_version() -> None:
    assert [step.version for step in MIGRATIONS] == list(range(2, SCHEMA_VERSION + 1))


def test_v1_ledger_with_data_is_migrated_on_open(ledger_url: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    make_v1_ledger(ledger_url)
    ledger = Ledger(ledger_url)
    assert ledger.schema_version == SCHEMA_VERSION
    runs = {run.id: run for run in ledger.list_runs()}
    assert set(runs) == {row["id"] for row in V1_RUN_ROWS}
    for row in V1_RUN_ROWS:
        run = runs[row["id"]]
        assert (run.kind, run.name, run.status, run.params) == (row["kind"], row["name"], row["status"],
                                                                 row["params"])
        assert run.started_at == row["started_at"] and run.tokens == row["tokens"]
        assert (run.host, run.pid, run.heartbeat_at, run.heartbeat_seconds) == ("", None, None, None)
    for child in ("c" * 36, "t" * 36):  # leaves keep every figure
        original = next(r for r in V1_RUN_ROWS if r["id"] == child)
        assert runs[child].cpu_seconds == original["cpu_seconds"] and runs[child].results == original["results"]
    parent = runs["p" * 36]
    assert parent.cpu_seconds == pytest.approx(2.0) and parent.wall_seconds == pytest.approx(2.0)
    assert parent.cost_usd == pytest.approx(0.02) and parent.energy_kwh == pytest.approx(0.002)
    assert parent.results["levers"] == [{"name": "x", "saving_usd": 1.0}]
    assert parent.results["measured_with_children"] == {"wall_seconds": 12.0, "cpu_seconds": 10.0,
                                                        "energy_kwh": 0.01, "cost_usd": 0.1}
    requests = ledger.list_requests()
    v3_defaults = {"team": "", "user": "", "tags": [], "cache_hit": False, "saved_usd": 0.0}  # v3 request columns
    assert [r.to_dict() | {"id": None, "timestamp": None} for r in requests] == [
        {**row, "id": None, "timestamp": None, **v3_defaults} for row in V1_REQUEST_ROWS]
    assert ledger.spend("key")[0].requests == len(V1_REQUEST_ROWS)  # v1 rows are summed by the v3 spend API
    assert [r.timestamp for r in requests] == [row["timestamp"] for row in V1_REQUEST_ROWS]
    with ledger.run("curate", "after the migration") as run:
        run.tokens = 3
    assert ledger.get_run(run.id).host and ledger.get_run(run.id).pid is not None
    ledger.close()

    postgres = request.getfixturevalue("postgres_url") if not ledger_url.startswith("sqlite") else None
    fresh = _other_db(ledger_url, tmp_path, postgres)
    Ledger(fresh).close()
    assert _shape(ledger_url) == _shape(fresh)


def _open_and_report(url: str, barrier: Any, out: Any) -> None:
    barrier.wait(timeout=120)
    out.put(Ledger(url).schema_version)


def test_processes_opening_a_v1_ledger_at_once_migrate_it_once(ledger_url: str) -> None:
    make_v1_ledger(ledger_url)
    ctx = multiprocessing.get_context("spawn")
    workers = 3
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_open_and_report, args=(ledger_url, barrier, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
        assert proc.exitcode == 0
    assert sorted(out.get(timeout=5) for _ in procs) == [SCHEMA_VERSION] * workers
    ledger = Ledger(ledger_url)
    # A second application of the v2 step would have taken the children's share from the parent twice (to 0).
    assert ledger.get_run("p" * 36).cpu_seconds == pytest.approx(2.0)
    assert len(ledger.list_runs()) == len(V1_RUN_ROWS)
