"""Ledger writes off the event loop: requests are queued and a background thread appends them to the ledger."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

from truecost.ledger import RequestRecord

_STOP = object()


class LedgerRecorder:
    """Appends request records from a queue on one thread, so a slow database never delays a response.

    `close()` drains what is queued before returning, so stopping the gateway loses no row; a write that fails
    is retried a few times, then counted in `failed` and reported on stderr.
    """

    def __init__(self, ledger: Any, *, retries: int = 3) -> None:
        self.ledger = ledger
        self.retries = retries
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
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._write(item)
            finally:
                self._queue.task_done()

    def _write(self, record: RequestRecord) -> None:
        for attempt in range(self.retries):
            try:
                self.ledger.log_request(record)
                self.written += 1
                return
            except Exception as exc:  # noqa: BLE001 - any database failure: retry, then report, never crash
                if attempt == self.retries - 1:
                    self.failed += 1
                    print(f"truecost gateway: could not write a request to the ledger: {exc}", file=sys.stderr)
                else:
                    time.sleep(0.1 * (attempt + 1))
