"""Meter a block of work into the ledger: wall time, CPU-seconds, GPU-hours, energy, tokens and dollars.

    with ledger.run("curate", "my-corpus", params={...}) as run:
        ...                      # do the work
        run.tokens += n          # what it processed
        run.results["kept"] = k  # anything worth keeping
        run.flush()              # optional, at checkpoints: the spend so far reaches the ledger now

The record is written as `running` on entry and closed on exit: `completed`, `stopped` (Ctrl-C, or a caller
that sets `run.status = "stopped"`, e.g. a budget) or `failed` (an exception, which is re-raised).

While the block runs, a daemon thread beats every `heartbeat_seconds` (default 30, `$TRUECOST_HEARTBEAT_SECONDS`):
it writes the spend so far and the time, so a process killed outright (kill -9, OOM, preemption) loses at most one
interval and its run is later shown as `lost` with that spend (`Ledger.reap`).

Each CPU-second is recorded once. CPU time is measured for the whole process, so a run opened inside another
one in the same process (a demo's curate step, a tune study's trials) is also inside its parent's measurement:
the parent records only its own share (its measure minus its nested runs'), and a nested run opened without a
`parent_id` takes the enclosing run as its parent. Only runs in the same ledger, the same process and the same
context (thread) are subtracted (see `own_elapsed`).
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import threading
import time
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from truecost.estimate.pricing import ComputePrices, compute_cost_usd, compute_energy_kwh

if TYPE_CHECKING:
    from truecost.ledger.records import RunRecord
    from truecost.ledger.store import Ledger

HEARTBEAT_ENV = "TRUECOST_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 30.0

_log = logging.getLogger(__name__)
# The meters open in this context, outermost first: how a meter finds the run it is nested in.
_ACTIVE: ContextVar[tuple[Meter, ...]] = ContextVar("truecost_active_meters", default=())


def _cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (workers, subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def describe_host() -> str:
    """A short description of this machine's compute, e.g. `cpu: 2 cores x86_64`."""
    return f"cpu: {os.cpu_count() or 1} cores {platform.machine()}"


def heartbeat_interval(seconds: float | None = None) -> float | None:
    """Seconds between heartbeats: `seconds`, else $TRUECOST_HEARTBEAT_SECONDS, else 30; None (no beat) if <= 0."""
    if seconds is None:
        raw = os.environ.get(HEARTBEAT_ENV, "").strip()
        try:
            seconds = float(raw) if raw else DEFAULT_HEARTBEAT_SECONDS
        except ValueError:
            _log.warning("ignoring %s=%r: not a number of seconds", HEARTBEAT_ENV, raw)
            seconds = DEFAULT_HEARTBEAT_SECONDS
    return seconds if seconds > 0 else None


class Meter:
    """Context manager that opens, measures, keeps alive and closes one run record."""

    def __init__(self, ledger: Ledger, kind: str, name: str = "", *, params: dict[str, Any] | None = None,
                 hardware: str | None = None, parent_id: str | None = None,
                 prices: ComputePrices | None = None, heartbeat_seconds: float | None = None) -> None:
        enclosing = _innermost(ledger.url)
        if parent_id is None and enclosing is not None:
            parent_id = enclosing.id
        self.ledger: Ledger = ledger
        self.prices = prices or ComputePrices()
        self.heartbeat_seconds = heartbeat_interval(heartbeat_seconds)
        self.record: RunRecord = ledger.start_run(kind, name, params=params, hardware=hardware or describe_host(),
                                                  parent_id=parent_id, heartbeat_seconds=self.heartbeat_seconds)
        self.tokens: int = 0
        self.gpu_hours: float = 0.0
        self.cost_usd: float | None = None  # None: priced from CPU-seconds and GPU-hours
        self.energy_kwh: float | None = None
        self.status: str | None = None  # None: decided at exit from how the block ended
        self.results: dict[str, Any] = self.record.results
        self._wall0: float | None = None  # None until the block is entered
        self._cpu0 = 0.0
        # Nested meters in this process: what finished ones measured, and the one running now.
        self._nested_lock = threading.Lock()
        self._nested_wall = 0.0
        self._nested_cpu = 0.0
        self._running_child: Meter | None = None
        self._enclosing: Meter | None = None
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    @property
    def id(self) -> str:
        """The run's id in the ledger."""
        return self.record.id

    def elapsed(self) -> tuple[float, float]:
        """(wall seconds, CPU-seconds) so far, nested runs included, for budgets checked during the work."""
        if self._wall0 is None:
            return 0.0, 0.0
        return time.perf_counter() - self._wall0, _cpu_seconds() - self._cpu0

    def own_elapsed(self) -> tuple[float, float]:
        """(wall seconds, CPU-seconds) so far that are this run's alone: nested meters' time is theirs.

        Only meters nested in this process's context are known; a run in another thread or a subprocess that
        meters itself is counted by both (its CPU reaches this process's rusage once it is waited for).
        """
        wall, cpu = self.elapsed()
        with self._nested_lock:
            nested_wall, nested_cpu, child = self._nested_wall, self._nested_cpu, self._running_child
        if child is not None:
            child_wall, child_cpu = child.elapsed()
            nested_wall, nested_cpu = nested_wall + child_wall, nested_cpu + child_cpu
        return max(0.0, wall - nested_wall), max(0.0, cpu - nested_cpu)

    def flush(self) -> None:
        """Write the spend so far and the results to the ledger now (the run stays `running`).

        Call it at checkpoints from the thread doing the work; the heartbeat writes the spend alone.
        """
        with self._flush_lock:
            self._measure_into(self.record)
            self.ledger.heartbeat(self.record, results=True)

    def _beat(self) -> None:
        with self._flush_lock:
            self._measure_into(self.record)
            self.ledger.heartbeat(self.record, results=False)

    def _beat_until_stopped(self, interval: float) -> None:
        warned = False
        while not self._stop.wait(interval):
            try:
                self._beat()
            except Exception as exc:  # noqa: BLE001 - a heartbeat that fails must never stop the work
                if not warned:
                    _log.warning("ledger heartbeat for run %s failed (will retry): %s", self.id, exc)
                    warned = True

    def _measure_into(self, record: RunRecord) -> tuple[float, float]:
        """Fill `record` with this run's own spend so far; returns the inclusive (wall, CPU) read at the same time."""
        inclusive = self.elapsed()
        wall, cpu = self.own_elapsed()
        record.wall_seconds = wall
        record.cpu_seconds = cpu
        record.gpu_hours = self.gpu_hours
        record.tokens = int(self.tokens)
        record.energy_kwh = (self.energy_kwh if self.energy_kwh is not None
                             else compute_energy_kwh(cpu, self.gpu_hours, self.prices))
        record.cost_usd = (self.cost_usd if self.cost_usd is not None
                           else compute_cost_usd(cpu, self.gpu_hours, self.prices))
        return inclusive

    def __enter__(self) -> Meter:
        self._enclosing = _innermost(self.ledger.url)
        self._wall0 = time.perf_counter()
        self._cpu0 = _cpu_seconds()
        if self._enclosing is not None:
            with self._enclosing._nested_lock:
                self._enclosing._running_child = self
        _ACTIVE.set((*_ACTIVE.get(), self))
        if self.heartbeat_seconds is not None:
            self._beater = threading.Thread(target=self._beat_until_stopped, args=(self.heartbeat_seconds,),
                                            name=f"truecost-heartbeat-{self.id[:8]}", daemon=True)
            self._beater.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
        _ACTIVE.set(tuple(m for m in _ACTIVE.get() if m is not self))
        with self._flush_lock:
            wall, cpu = self._measure_into(self.record)
        if self._enclosing is not None:
            with self._enclosing._nested_lock:
                self._enclosing._nested_wall += wall
                self._enclosing._nested_cpu += cpu
                if self._enclosing._running_child is self:
                    self._enclosing._running_child = None
        if exc_type is None:
            status = self.status or "completed"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "stopped"
        else:
            status = "failed"
            self.record.results.setdefault("error", f"{exc_type.__name__}: {exc}")
        self.ledger.finish_run(self.record, status)


def _innermost(url: str) -> Meter | None:
    """The innermost active meter of this context that writes to the same ledger (each ledger's sums stay whole)."""
    return next((meter for meter in reversed(_ACTIVE.get()) if meter.ledger.url == url), None)
