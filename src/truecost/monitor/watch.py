"""Follow the ledger's gateway request log, score each window as it fills, and alert (callback and webhook).

The watcher keeps a cursor (last request id seen) and polls `Ledger.list_requests`; windows close after
`window` requests, or, with `every`, when a request arrives past the window's end (an idle window closes
when the clock passes its end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from truecost.monitor.data import load_records, parse_duration, requests_frame
from truecost.monitor.monitor import Monitor, WindowResult, record_results

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from truecost.config import Config
    from truecost.ledger import Ledger
    from truecost.monitor.settings import MonitorSettings


@dataclass
class Watcher:
    """A fitted monitor plus the ledger cursor and the requests of the window now filling."""

    monitor: Monitor
    ledger: Ledger
    since: datetime | None = None
    window: int = 50
    every: str | None = None
    pending: list[Any] = field(default_factory=list)
    last_id: int = 0
    window_start: datetime | None = None
    # Called right after each window is scored, so what it reads (e.g. `monitor.decision()`) is as of that window.
    on_window: Callable[[WindowResult], None] | None = None

    def poll(self, now: datetime | None = None, flush: bool = False) -> list[WindowResult]:
        """Read new requests and score every window they complete; `flush` scores a last partial window too."""
        new = [r for r in self.ledger.list_requests(since=self.since) if (r.id or 0) > self.last_id]
        if new:
            self.last_id = max(r.id or 0 for r in new)
            # Read on from the newest timestamp; the id cursor drops the rows read already at that instant.
            self.since = max(r.timestamp for r in new)
        scored: list[WindowResult] = []
        if self.every:
            step = parse_duration(self.every)
            for record in new:
                if self.window_start is None:
                    self.window_start = record.timestamp
                while record.timestamp >= self.window_start + step:
                    scored.extend(self._close())
                    self.window_start = self.window_start + step
                self.pending.append(record)
            now = now or datetime.now(UTC)
            if self.window_start is not None and (flush or now >= self.window_start + step):
                scored.extend(self._close())
                self.window_start = self.window_start + step if not flush else None
        else:
            self.pending.extend(new)
            while len(self.pending) >= self.window:
                batch, self.pending = self.pending[:self.window], self.pending[self.window:]
                scored.append(self._score(batch))
            if flush and len(self.pending) >= max(self.window // 2, 1):
                scored.extend(self._close())
        return scored

    def _close(self) -> list[WindowResult]:
        batch, self.pending = self.pending, []
        return [self._score(batch)] if batch else []

    def _score(self, batch: list[Any]) -> WindowResult:
        result = self.monitor.update(self._frame(batch))
        if self.on_window is not None:
            self.on_window(result)
        return result

    def _frame(self, records: list[Any]) -> pd.DataFrame:
        from truecost.monitor.data import canonical_frame

        # A live window is scored as it comes; the reference and `ledger:` sources already refused prompt-less logs.
        return canonical_frame(requests_frame(records), {}, require_prompts=False)


def post_webhook(url: str, payload: dict[str, Any], timeout_s: float = 10.0) -> str | None:
    """POST `payload` as JSON to `url`; the error as one line, or None when it was accepted (2xx)."""
    import httpx

    try:
        response = httpx.post(url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"webhook {url}: {type(exc).__name__}: {exc}"
    if response.status_code >= 300:
        return f"webhook {url}: HTTP {response.status_code}"
    return None


def follow(watcher: Watcher, on_window: Callable[[WindowResult], None], *, poll_seconds: float = 30.0,
           max_polls: int | None = None, once: bool = False, stop_on: Callable[[], bool] | None = None) -> None:
    """Poll until `max_polls`, or once (scoring a last partial window), or until `stop_on()` is true."""
    watcher.on_window = on_window
    polls = 0
    while True:
        watcher.poll(flush=once)
        polls += 1
        if once or (max_polls is not None and polls >= max_polls) or (stop_on is not None and stop_on()):
            return
        time.sleep(poll_seconds)


def since_default(lookback: str | None) -> datetime:
    """Where a watch starts reading: `lookback` ago (e.g. 1d), or now (only requests from here on)."""
    now = datetime.now(UTC)
    return now - parse_duration(lookback) if lookback else now


def watch_ledger(reference: Any, ledger: Ledger, settings: MonitorSettings, config: Config,
                 on_window: Callable[[Monitor, WindowResult], None], *, columns: Mapping[str, str] | None = None,
                 lookback: str | None = None, poll_seconds: float = 30.0, max_polls: int | None = None,
                 once: bool = False, params: dict[str, Any] | None = None) -> Monitor:
    """Fit on `reference`, then follow `ledger`'s request log, calling `on_window(monitor, window)` as each
    window is scored; the watch is itself a metered `monitor` run in `ledger`, with its alarms and decision."""
    ref = load_records(reference, {**settings.columns, **(columns or {})}, ledger=ledger)
    monitor = Monitor(settings, config).fit(ref, horizon_windows=settings.horizon_windows, window_rows=settings.window)
    watcher = Watcher(monitor, ledger, since=since_default(lookback), window=settings.window, every=settings.every)
    run_params = {"reference": str(reference), "window": settings.window, "every": settings.every, **(params or {})}
    with ledger.run("monitor", "watch", params=run_params, prices=config.compute_prices()) as run:
        try:
            follow(watcher, lambda result: on_window(monitor, result), poll_seconds=poll_seconds,
                   max_polls=max_polls, once=once)
        finally:
            if monitor.windows_:
                record_results(run.results, monitor.result())
    return monitor
