"""The ledger against real SQLite and real PostgreSQL: round trips, metering, concurrency, errors."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta

import pytest

from truecost.errors import UserError
from truecost.estimate.pricing import ComputePrices
from truecost.ledger import Ledger, RequestRecord
from truecost.ledger.export import write_runs
from truecost.ledger.schema import SCHEMA_VERSION, MetaRow


def test_run_round_trip(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    run = ledger.start_run("train", "tiny", params={"lr": 3e-4, "nested": {"a": [1, 2]}}, hardware="cpu: 2")
    assert ledger.get_run(run.id).status == "running"
    run.tokens = 12345
    run.gpu_hours = 0.5
    run.cost_usd = 1.25
    run.results["eval_loss"] = 2.5
    ledger.finish_run(run, "completed")
    got = ledger.get_run(run.id[:8])  # a unique prefix is enough
    assert got.status == "completed"
    assert got.tokens == 12345 and got.gpu_hours == 0.5 and got.cost_usd == 1.25
    assert got.params == {"lr": 3e-4, "nested": {"a": [1, 2]}}
    assert got.results == {"eval_loss": 2.5}
    assert got.ended_at is not None and got.ended_at >= got.started_at
    assert got.started_at.tzinfo is not None


def test_list_filters_and_order(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ids = []
    for kind in ("curate", "train", "curate"):
        ids.append(ledger.start_run(kind, kind).id)
        time.sleep(0.01)
    listed = ledger.list_runs()
    assert [r.id for r in listed] == ids[::-1]
    assert {r.id for r in ledger.list_runs(kind="curate")} == {ids[0], ids[2]}
    assert [r.id for r in ledger.list_runs(limit=1)] == [ids[2]]
    assert ledger.count_runs() == 3
    with pytest.raises(UserError, match="no run"):
        ledger.get_run("does-not-exist")


def _burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(i * i for i in range(1000))


def test_meter_measures_and_prices_cpu(ledger_url: str) -> None:
    prices = ComputePrices(cpu_usd_per_core_hour=36.0, cpu_watts_per_core=100.0, pue=1.5)
    ledger = Ledger(ledger_url)
    with ledger.run("curate", "burn", prices=prices) as run:
        _burn_cpu(0.3)
        run.tokens += 42
    got = ledger.get_run(run.id)
    assert got.status == "completed"
    assert 0.25 <= got.cpu_seconds <= 5.0
    assert got.wall_seconds >= 0.25
    # Independent arithmetic: $36 per core-hour is one cent per core-second; 100 W x PUE 1.5.
    assert got.cost_usd == pytest.approx(got.cpu_seconds * 0.01, rel=1e-9)
    assert got.energy_kwh == pytest.approx(got.cpu_seconds / 3600 * 0.1 * 1.5, rel=1e-9)
    assert got.tokens == 42


def test_meter_records_failure_and_stop(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    with pytest.raises(ValueError), ledger.run("train", "boom") as run:
        raise ValueError("bad batch")
    failed = ledger.get_run(run.id)
    assert failed.status == "failed" and "bad batch" in failed.results["error"]
    with pytest.raises(KeyboardInterrupt), ledger.run("train", "ctrl-c") as run2:
        raise KeyboardInterrupt
    assert ledger.get_run(run2.id).status == "stopped"
    with ledger.run("train", "budget") as run3:
        run3.status = "stopped"
    assert ledger.get_run(run3.id).status == "stopped"


def _append_runs(url: str, worker: int, count: int) -> None:
    ledger = Ledger(url)
    for i in range(count):
        with ledger.run("serve", f"w{worker}-{i}") as run:
            run.tokens = i
        ledger.log_request(RequestRecord(timestamp=datetime.now(UTC), model=f"m{worker}", prompt_tokens=i))
    ledger.close()


def test_concurrent_writers_lose_nothing(ledger_url: str) -> None:
    workers, per_worker = 4, 40
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_runs, args=(ledger_url, w, per_worker)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
        assert proc.exitcode == 0
    ledger = Ledger(ledger_url)
    runs = ledger.list_runs()
    assert len(runs) == workers * per_worker
    assert len({r.name for r in runs}) == workers * per_worker
    assert all(r.status == "completed" for r in runs)
    requests = ledger.list_requests()
    assert len(requests) == workers * per_worker
    assert sorted(r.prompt_tokens for r in requests if r.model == "m0") == list(range(per_worker))


def test_requests_time_window(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for minute in range(10):
        ledger.log_request(RequestRecord(timestamp=t0 + timedelta(minutes=minute), model="small",
                                         cost_usd=0.001 * minute, latency_ms=10.0, prompt="hi", quality=1.0))
    window = ledger.list_requests(since=t0 + timedelta(minutes=3), until=t0 + timedelta(minutes=6))
    assert [r.cost_usd for r in window] == pytest.approx([0.003, 0.004, 0.005])
    assert window[0].timestamp.tzinfo is not None and window[0].prompt == "hi"


def test_export_round_trips(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    with ledger.run("review", "r", params={"suite": "bias"}) as run:
        run.tokens = 7
    buf = io.StringIO()
    assert write_runs(ledger.list_runs(), buf, "jsonl") == 1
    row = json.loads(buf.getvalue())
    assert row["id"] == run.id and row["params"] == {"suite": "bias"} and row["tokens"] == 7
    buf = io.StringIO()
    write_runs(ledger.list_runs(), buf, "csv")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows[0]["id"] == run.id and json.loads(rows[0]["params"]) == {"suite": "bias"}


def test_newer_schema_is_refused(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    with ledger._session() as session:
        session.merge(MetaRow(key="schema_version", value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(UserError, match="newer than this truecost"):
        Ledger(ledger_url)


@pytest.mark.parametrize("url, message", [
    ("nosuchdb://x/y", "only sqlite and postgresql|unknown database driver|not a database URL"),
    ("postgresql://nobody@127.0.0.1:1/none", "cannot open the ledger"),
    ("mysql://u@h/db", "only sqlite and postgresql"),
])
def test_bad_url_is_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        Ledger(url)
    assert "\n" not in str(info.value)
    assert "postgresql" in str(info.value) or "sqlite" in str(info.value) or "nosuchdb" in str(info.value)


def test_password_is_hidden_in_errors() -> None:
    with pytest.raises(UserError) as info:
        Ledger("postgresql://alice:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(info.value)
