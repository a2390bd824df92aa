"""`truecost monitor` and `truecost monitor watch` as a user runs them: a real subprocess, a real ledger and a
real HTTP server on 127.0.0.1 receiving the webhook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pandas as pd

from truecost.ledger import Ledger, RequestRecord
from truecost.monitor.streams import drift_stream


def truecost(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_monitor_json_html_ledger_and_exit_codes(tmp_path: Path, pools: dict[str, pd.DataFrame]) -> None:
    s = drift_stream(pools["base"], pools["virology"], n_reference=200, n_before=100, n_after=100, seed=0)
    s.reference.rename(columns={"quality": "correct"}).to_json(tmp_path / "ref.jsonl", orient="records", lines=True)
    s.current.rename(columns={"quality": "correct"}).to_csv(tmp_path / "cur.csv", index=False)
    html = tmp_path / "report.html"
    result = truecost("monitor", "-r", "ref.jsonl", "-c", "cur.csv", "--columns", "quality=correct", "--json",
                      "--html", str(html), "--fail-on", "alarm")
    assert result.returncode == 1, result.stderr  # the stream drifts, and --fail-on alarm says so
    doc = json.loads(result.stdout)
    assert [w["index"] for w in doc["windows"]] == [0, 1, 2, 3]
    assert doc["decision"]["first_alarm_window"] == 2
    assert doc["decision"]["action"] in ("retrain", "watch")
    page = html.read_text()
    assert page.count("<svg") == 1 and "<script" not in page and 'src="http' not in page
    runs = Ledger().list_runs(kind="monitor")
    assert len(runs) == 1 and runs[0].results["first_alarm"]["input_drift"] == 2
    quiet = truecost("monitor", "-r", "ref.jsonl", "-c", "ref.jsonl", "--columns", "quality=correct",
                     "--fail-on", "alarm", "--no-ledger")
    assert quiet.returncode == 0, quiet.stderr
    assert "NONE" in quiet.stdout
    missing = truecost("monitor", "-r", "ref.jsonl", "-c", "nope.csv")
    assert missing.returncode == 2 and "nope.csv does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_watch_follows_the_ledger_and_posts_alarms(tmp_path: Path, pools: dict[str, pd.DataFrame]) -> None:
    s = drift_stream(pools["base"], pools["accounting"], n_reference=200, n_before=100, n_after=100, seed=1)
    s.reference.to_json(tmp_path / "ref.jsonl", orient="records", lines=True)
    ledger = Ledger()
    start = datetime.now(UTC) - timedelta(hours=2)
    for i, row in s.current.iterrows():
        ledger.log_request(RequestRecord(timestamp=start + timedelta(seconds=30 * int(i)), model="m",
                                         prompt=row["prompt"], quality=float(row["quality"])))
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        result = truecost("monitor", "watch", "-r", "ref.jsonl", "--lookback", "3h", "--once", "--window", "50",
                          "--webhook", url, "--fail-on", "alarm", "--json")
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["windows"]) == 4 and doc["decision"]["first_alarm_window"] == 2
    assert _Hook.received and all(event["window"]["index"] >= 2 for event in _Hook.received)
    runs = ledger.list_runs(kind="monitor")
    assert runs[0].name == "watch" and runs[0].status == "completed"
