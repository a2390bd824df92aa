"""Ledger writes off the event loop: requests are queued and a background thread appends them to the ledger."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

from truecost.ledger import Ledger, RequestRecord

_STOP = object()


class LedgerRecorder:
    """Appends request records from a queue on one thread, so a slow database never delays a response.

    Records are written in batches (one transaction each; whatever queued up while the last batch was written,
    after a short linger), which costs a quarter of the CPU of one transaction per row and keeps the writer off
    the GIL most of the time. `close()` drains the queue before returning, so stopping the gateway loses no row;
    a batch that fails is retried, then written row by row, and rows that still fail are counted in `failed` and
    reported on stderr.
    """

    def __init__(self, ledger: Ledger, *, retries: int = 3, linger_s: float = 0.05, max_batch: int = 500) -> None:
        self.ledger = ledger
        self.retries = retries
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.written = 0
        self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="truecost-ledger-recorder", daemon=True)
        self._thread.start()

    def submit(self, record: RequestRecord) -> None:
        """Queue one record; returns at once."""
        self._queue.put(record)

    @property
    def pending(self) -> int:
        """Records queued but not yet written."""
        return self._queue.qsize()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued so far is written (True) or `timeout_s` passes (False)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self, timeout_s: float = 60.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                time.sleep(self.linger_s)  # let a burst collect, so one transaction carries many rows
            while len(batch) < self.max_batch and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if r is not _STOP]
            try:
                if records:
                    self._write(records)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if batch[-1] is _STOP:
                return

    def _write(self, records: list[RequestRecord]) -> None:
        for attempt in range(self.retries):
            try:
                self.ledger.log_requests(records)
                self.written += len(records)
                return
            except Exception:  # noqa: BLE001 - any database failure: retry, then row by row, never crash
                time.sleep(0.1 * (attempt + 1))
        for record in records:
            try:
                self.ledger.log_request(record)
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - report and go on with the next row
                self.failed += 1
                print(f"truecost gateway: could not write a request to the ledger: {exc}", file=sys.stderr)
