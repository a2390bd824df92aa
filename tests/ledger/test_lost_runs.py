"""Dead runs: a process killed outright leaves its run `lost` with the spend its heartbeat flushed, not `running`
at $0 forever. Real subprocesses, real SIGKILL, real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest

from tests.cli.test_cli import truecost
from truecost.ledger import Ledger
from truecost.ledger.liveness import process_alive, this_host

# Opens a metered run with a fast heartbeat, says its id, then burns CPU until it is killed.
DOOMED = textwrap.dedent("""
    import sys
    from truecost.ledger import Ledger
    with Ledger(sys.argv[1]).run("train", "doomed") as run:
        run.tokens = 4096
        print(run.id, flush=True)
        while True:
            sum(i * i for i in range(10_000))
""")


def _wait_for(condition, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_killed_process_shows_as_lost_with_its_spend(ledger_url: str) -> None:
    env = {**os.environ, "TRUECOST_HEARTBEAT_SECONDS": "0.2"}
    proc = subprocess.Popen([sys.executable, "-c", DOOMED, ledger_url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        watcher = Ledger(ledger_url, reap=False)
        # Wait until a heartbeat has flushed some CPU time, as it would during any long piece of work.
        _wait_for(lambda: watcher.get_run(run_id).cpu_seconds > 0.3)
        assert watcher.get_run(run_id).status == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    result = truecost("--ledger", ledger_url, "ledger", "list", "--json")
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(result.stdout)
    assert run["id"] == run_id and run["status"] == "lost"
    assert run["cpu_seconds"] > 0.3 and run["cost_usd"] > 0 and run["energy_kwh"] > 0 and run["tokens"] == 4096
    assert run["pid"] == proc.pid and run["host"] == this_host()
    assert f"process {proc.pid}" in run["results"]["lost"]["reason"]
    assert run["ended_at"] == run["heartbeat_at"]  # it ended when it was last seen alive


def test_heartbeat_flushes_spend_while_the_work_runs(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    with ledger.run("curate", "beating", heartbeat_seconds=0.1) as run:
        run.tokens = 7
        end = time.process_time() + 0.5
        while time.process_time() < end:
            sum(i * i for i in range(1000))
        seen = _wait_for(lambda: (r := Ledger(ledger_url, reap=False).get_run(run.id)).cpu_seconds > 0.3 and r)
        assert seen.status == "running" and seen.tokens == 7 and seen.cost_usd > 0
        assert seen.heartbeat_at is not None and seen.heartbeat_at > seen.started_at
        assert seen.heartbeat_seconds == pytest.approx(0.1)
    assert ledger.get_run(run.id).status == "completed"


def test_flush_writes_results_at_a_checkpoint(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    with ledger.run("train", "checkpointed", heartbeat_seconds=0) as run:
        assert run.heartbeat_seconds is None  # 0: no heartbeat thread
        run.tokens, run.gpu_hours = 1000, 0.25
        run.results["step"] = 50
        run.flush()
        mid = Ledger(ledger_url, reap=False).get_run(run.id)
        assert (mid.status, mid.tokens, mid.gpu_hours, mid.results) == ("running", 1000, 0.25, {"step": 50})
        assert mid.cost_usd > 0
    assert ledger.get_run(run.id).status == "completed"


def test_silent_run_elsewhere_is_lost_after_its_grace(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    run = ledger.start_run("train", "on another machine", host="elsewhere", pid=1, heartbeat_seconds=10)
    start = run.started_at
    assert ledger.reap(now=start + timedelta(seconds=90)) == []  # 4 beats + 60 s of grace not yet over
    (lost,) = ledger.reap(now=start + timedelta(seconds=101))
    assert lost.id == run.id and "no heartbeat" in lost.results["lost"]["reason"]
    assert ledger.get_run(run.id).status == "lost" and ledger.get_run(run.id).ended_at == start


def test_live_runs_are_left_alone_and_a_wrongly_lost_one_comes_back(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    mine = ledger.start_run("monitor", "this process, no heartbeat")
    assert ledger.reap() == [] and ledger.get_run(mine.id).status == "running"
    with ledger.run("serve", "beating", heartbeat_seconds=0.1) as run:
        # A clock far ahead makes the live run look silent; its next beat proves it alive again.
        assert [r.id for r in ledger.reap(now=run.record.started_at + timedelta(hours=1))
                if r.id == run.id] == [run.id]
        assert ledger.get_run(run.id).status == "lost"
        _wait_for(lambda: ledger.get_run(run.id).status == "running")
    assert ledger.get_run(run.id).status == "completed"


def test_process_alive_sees_zombies_and_reused_pids() -> None:
    me = psutil.Process()
    started = psutil.Process().create_time()
    from datetime import UTC, datetime

    assert process_alive(me.pid, datetime.fromtimestamp(started + 1, UTC))
    # A run that started a minute before this process did cannot be this process's (the pid was reused).
    assert not process_alive(me.pid, datetime.fromtimestamp(started - 60, UTC))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    _wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE)
    assert not process_alive(child.pid, datetime.now(UTC))  # exited, not yet waited for
    child.wait()
    assert not process_alive(child.pid, datetime.now(UTC))


def test_a_lost_training_run_counts_as_wasted_spend_in_the_tco(tmp_path: Path) -> None:
    from truecost.config import Config
    from truecost.estimate.tco_ledger import read_measurements

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    for status, cost in (("completed", 3.0), ("lost", 1.0)):
        run = ledger.start_run("train", status)
        run.cost_usd = cost
        ledger.finish_run(run, status)
    measurements, _ = read_measurements(ledger, config=Config())
    (share,) = [m for m in measurements if m.input == "failed_run_share"]
    assert share.value == pytest.approx(0.25)
