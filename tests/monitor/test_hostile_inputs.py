"""Monitor refuses what a careless user gives it in one line (exit 2), before any work, never with a traceback.

Each case failed on the code before this fix: an `--html` folder or `--every` over rows without a timestamp raised
a traceback after the whole run; `value_of_quality_usd = inf` priced every drift as an infinite loss; a file of
null prompts was judged as a stream of empty texts (an input-drift alarm on nothing); `--no-ledger` still created
a ledger, so it failed where none could be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from truecost.config import load_config
from truecost.errors import UserError
from truecost.monitor.data import canonical_frame, cut_windows, parse_duration
from truecost.monitor.settings import monitor_settings


def _frame(rows: int, **columns: object) -> pd.DataFrame:
    return pd.DataFrame({"prompt": [f"question {i} about the body" for i in range(rows)], **columns})


@pytest.mark.parametrize("text", ["[monitor]\nvalue_of_quality_usd = inf\n", "[monitor]\nhorizon_days = inf\n",
                                  "[monitor]\nretrain_cost_usd = inf\n", "[monitor]\nseed = -5\n"])
def test_settings_refuse_infinite_dollars_and_negative_seeds(tmp_path: Path, text: str) -> None:
    path = tmp_path / "truecost.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=r"\[monitor\]: (value_of_quality_usd|horizon_days|retrain_cost_usd|seed)"):
        monitor_settings(load_config(path))
    with pytest.raises(UserError, match="finite"):
        monitor_settings(None, value_of_quality_usd=float("inf"))


def test_every_refuses_missing_timestamps_and_impossible_durations() -> None:
    stamps = pd.Series(pd.date_range("2026-01-01", periods=40, freq="5min", tz="UTC"))
    stamps[[3, 17]] = pd.NaT
    frame = canonical_frame(_frame(40, timestamp=stamps), {})
    with pytest.raises(UserError, match="2 of 40 rows have no timestamp"):
        cut_windows(frame, every="1h")
    for text in ("0.0000001s", "99999999999999999999d", "0h"):
        with pytest.raises(UserError, match="is not a duration"):
            parse_duration(text)
    assert parse_duration("90s").total_seconds() == 90


def test_bad_rows_are_one_line_errors() -> None:
    mixed = _frame(4, timestamp=["2026-01-01T00:00:00Z", 1, "2026-01-01T01:00:00Z", 2])
    with pytest.raises(UserError) as caught:
        canonical_frame(mixed, {}, source="cur.jsonl")
    assert "timestamp" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UserError, match="'prompt' is empty in every row"):
        canonical_frame(pd.DataFrame({"prompt": [None] * 30, "quality": [1.0] * 30}), {})
    for name in ("latency_ms", "cost_usd"):
        with pytest.raises(UserError, match=f"'{name}' holds negative values"):
            canonical_frame(_frame(30, **{name: [-5.0] + [100.0] * 29}), {})
    # A few missing prompts among real ones stay allowed.
    some = canonical_frame(pd.DataFrame({"prompt": [None, "a real question"] * 15}), {})
    assert (some["prompt"] == "").sum() == 15


def _truecost(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"}, cwd=cwd)


def test_html_folder_fails_before_the_run_and_no_ledger_needs_none(tmp_path: Path) -> None:
    rows = [{"prompt": f"What does the heart pump in case {i}?", "quality": i % 5 > 0} for i in range(60)]
    (tmp_path / "ref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "out").mkdir()
    folder = _truecost("monitor", "-r", "ref.jsonl", "-c", "ref.jsonl", "--html", "out", "--no-ledger",
                       cwd=tmp_path)
    assert folder.returncode == 2 and "Traceback" not in folder.stderr, folder.stderr
    assert folder.stderr.strip().splitlines()[-1] == "error: --html out is a folder; name a file, e.g. out/monitor.html"
    assert "monitoring" not in folder.stderr  # refused before any work
    # A `.truecost` file where the ledger's folder would go: no ledger can be created here.
    (tmp_path / ".truecost").write_text("not a folder", encoding="utf-8")
    quiet = _truecost("--ledger", ".truecost/ledger.db", "monitor", "-r", "ref.jsonl", "-c", "ref.jsonl",
                      "--no-ledger", "--json", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["decision"]["action"] == "none"


def test_watch_with_nothing_to_score_says_so_and_refuses_an_endless_poll(tmp_path: Path) -> None:
    from truecost.monitor.monitor import Monitor

    reference = canonical_frame(_frame(40, quality=[1.0, 0.0] * 20), {})
    decision = Monitor().fit(reference, horizon_windows=24, window_rows=50).decision()
    assert decision.reason.startswith("nothing scored yet") and decision.quality_drop_basis == "no_windows"
    reference.to_json(tmp_path / "ref.jsonl", orient="records", lines=True)
    empty = _truecost("monitor", "watch", "-r", "ref.jsonl", "--once", cwd=tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert " ".join(empty.stdout.split()).startswith("no requests in the ledger's log to score")
    endless = _truecost("monitor", "watch", "-r", "ref.jsonl", "--max-polls", "2", "--poll-seconds", "inf",
                        cwd=tmp_path)
    assert endless.returncode == 2 and "Traceback" not in endless.stderr and "--poll-seconds" in endless.stderr


def test_a_byte_order_mark_is_read_like_plain_utf8(tmp_path: Path) -> None:
    from truecost.monitor.data import load_records

    rows = "".join(json.dumps({"prompt": f"ünïcode question {i}", "quality": 1}) + "\n" for i in range(3))
    (tmp_path / "windows tool.jsonl").write_text(rows, encoding="utf-8-sig")
    frame = load_records(str(tmp_path / "windows tool.jsonl"))
    assert list(frame["prompt"]) == [f"ünïcode question {i}" for i in range(3)]


def test_column_mappings_that_collide_and_bare_number_timestamps_are_refused() -> None:
    """Failed before this fix: `quality=score` over a file that also had `quality` made two columns of one name (a
    pandas traceback); one source mapped to two names gave a misleading "no column"; Unix-second timestamps were
    read as nanoseconds, so `--every 1h` put a whole day of traffic into one window dated 1970."""
    frame = _frame(30, quality=[1.0] * 30, score=[0.0, 1.0] * 15, question=["other text"] * 30)
    mapped = canonical_frame(frame, {"quality": "score"})
    assert list(mapped["quality"][:4]) == [0.0, 1.0, 0.0, 1.0]  # the mapped column wins
    swapped = canonical_frame(frame, {"prompt": "question", "output": "prompt"})
    assert swapped["prompt"][0] == "other text" and swapped["output"][0] == "question 0 about the body"
    with pytest.raises(UserError, match="score is mapped to more than one name"):
        canonical_frame(frame, {"quality": "score", "cost_usd": "score"})
    unix_seconds = _frame(30, timestamp=[1_765_000_000 + 600 * i for i in range(30)])
    with pytest.raises(UserError, match="'timestamp' holds numbers; write ISO 8601"):
        canonical_frame(unix_seconds, {})
