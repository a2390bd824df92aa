"""Is the process behind a `running` run still alive? The rules that turn a silent run into a `lost` one.

A run is lost when its heartbeat has been silent for much longer than it promised (any host), or when, on this
host, its process is gone: no such pid, a zombie, or a pid reused by a process that started after the run did.
A run whose owner sends no heartbeat (opened by `Ledger.start_run` alone, or by a v1 truecost) is judged by
its process and, failing that, by a long silence. Hosts are told apart by name; two machines (or containers with
separate pid namespaces) sharing a name are covered by the heartbeat rule, since a live run keeps beating.
"""

from __future__ import annotations

import socket
from datetime import datetime

from truecost.ledger.records import RunRecord

SILENT_BEATS = 4  # heartbeats a run may miss (a slow disk, a busy database) before it counts as lost
SILENCE_GRACE_SECONDS = 60.0
NO_HEARTBEAT_STALE_SECONDS = 600.0  # runs that never promised a heartbeat
PID_REUSE_SLACK_SECONDS = 5.0  # clock granularity between a process's start time and its run's


def this_host() -> str:
    """This machine's name as runs record it (`host`); a process check is only meaningful on the same host."""
    return socket.gethostname()


def stale_after_seconds(run: RunRecord) -> float:
    """How long a run may stay silent before it is lost whatever its host."""
    if run.heartbeat_seconds:
        return SILENT_BEATS * run.heartbeat_seconds + SILENCE_GRACE_SECONDS
    return NO_HEARTBEAT_STALE_SECONDS


def process_alive(pid: int, started_at: datetime) -> bool:
    """Whether `pid` on this host is a live process that may be the one that started a run at `started_at`."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= started_at.timestamp() + PID_REUSE_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's live process
        return True


def why_lost(run: RunRecord, *, now: datetime, host: str) -> str | None:
    """The reason a `running` run is lost, or None while it may still be alive."""
    last_seen = run.heartbeat_at or run.started_at
    silent = (now - last_seen).total_seconds()
    if silent > stale_after_seconds(run):
        return f"no heartbeat for {silent:.0f} s (expected every {run.heartbeat_seconds or 0:g} s)"
    # One missed beat first: a fresh heartbeat from a same-named host in another pid namespace proves life.
    if (run.pid is not None and run.host == host and silent > 1.5 * (run.heartbeat_seconds or 0.0)
            and not process_alive(run.pid, run.started_at)):
        return f"process {run.pid} on {host} is gone"
    return None
