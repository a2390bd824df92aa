"""Data loading, windows, the decision's arithmetic and the ops detector, each on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from truecost.config import Config
from truecost.errors import UserError
from truecost.estimate import retrain_cost_usd, token_price_usd
from truecost.ledger import Ledger, RequestRecord
from truecost.monitor import OpsDriftDetector, decide, economics_from_config, monitor_settings, run_monitor
from truecost.monitor.data import cut_windows, load_records, parse_ledger_source
from truecost.monitor.features import Batch


def _rows(n: int) -> list[dict[str, object]]:
    return [{"question": f"what is {i} plus {i}?", "correct": i % 2, "latency_ms": 100.0 + i,
             "timestamp": f"2026-11-01T00:{i:02d}:00+00:00"} for i in range(n)]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_file_format_loads_with_a_column_map(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame(_rows(30))
    path = tmp_path / f"data{suffix}"
    {".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
     ".csv": lambda: frame.to_csv(path, index=False), ".parquet": lambda: frame.to_parquet(path)}[suffix]()
    loaded = load_records(str(path), {"prompt": "question", "quality": "correct"})
    assert loaded["prompt"].tolist() == frame["question"].tolist()
    assert loaded["quality"].tolist() == frame["correct"].astype(float).tolist()
    assert loaded["cost_usd"].isna().all() and str(loaded["timestamp"].dt.tz) == "UTC"


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_records(str(tmp_path / "missing.jsonl"))
    with pytest.raises(UserError, match="0..1"):
        load_records([{"prompt": "a", "quality": 3}])
    with pytest.raises(UserError, match="no column"):
        load_records([{"prompt": "a"}], {"quality": "correct"})
    with pytest.raises(UserError, match="unknown name"):
        load_records([{"prompt": "a"}], {"qualty": "prompt"})
    with pytest.raises(UserError, match="window"):
        monitor_settings(Config(), window=2)


def test_windows_by_count_merge_a_short_tail_and_by_time_follow_the_clock() -> None:
    frame = load_records(_rows(60), {"prompt": "question"})
    assert [len(w) for w in cut_windows(frame, window=25)] == [25, 35]
    assert [len(w) for w in cut_windows(frame, window=20)] == [20, 20, 20]
    assert [len(w) for w in cut_windows(frame, every="15m")] == [15, 15, 15, 15]
    with pytest.raises(UserError, match="timestamp"):
        cut_windows(load_records([{"prompt": "a"}] * 5), every="1h")


def test_ledger_source_reads_the_gateway_log_within_its_time_window(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(10):
        ledger.log_request(RequestRecord(timestamp=start + timedelta(hours=i), model="m", prompt=f"p{i}",
                                         quality=1.0, latency_ms=10.0 + i, cost_usd=0.001))
    frame = load_records("ledger:2026-11-01T02:00..2026-11-01T05:00", ledger=ledger)
    assert frame["prompt"].tolist() == ["p2", "p3", "p4"]
    now = datetime(2026, 11, 10, tzinfo=UTC)
    assert parse_ledger_source("ledger:-7d..", now) == (now - timedelta(days=7), None)


def test_decision_dollars_follow_the_formula_and_the_estimate_module() -> None:
    cfg = Config()
    econ = economics_from_config(cfg, monitor_settings(cfg))
    assert econ.retrain_cost_usd == pytest.approx(retrain_cost_usd(cfg))
    price = token_price_usd("gpt-4o-mini", cfg.target.prompt_tokens, cfg.target.output_tokens, cfg)
    assert price is not None and econ.value_of_quality_usd == pytest.approx(2 * price)
    assert econ.horizon_days == pytest.approx(365 / cfg.target.retrains_per_year / 2)  # truecost.units: 365-day year
    per_unit = econ.value_of_quality_usd * cfg.target.requests_per_day * econ.horizon_days
    drop = 2 * econ.retrain_cost_usd / per_unit
    decision = decide(drop, 0.01, True, 3, econ)
    assert decision.action == "retrain"
    assert decision.expected_loss_usd == pytest.approx(drop * per_unit)
    assert decide(drop / 4, 0.01, True, 3, econ).action == "watch"
    assert decide(drop / 4, 0.01, False, None, econ).action == "none"
    # A loss above the cost that no quality alarm confirms is watched, not bought.
    assert decide(drop, 0.01, False, None, econ).action == "watch"
    # Demanding 90% confidence turns a noisy estimate just above break-even into "watch".
    assert decide(1.2 * drop / 2, 0.2, True, 3, econ, confidence=0.9).action == "watch"


def _ops_batch(latency: np.ndarray, cost: np.ndarray) -> Batch:
    frame = pd.DataFrame({"latency_ms": latency, "cost_usd": cost})
    return Batch(frame=frame, embeddings=np.zeros((len(frame), 1)))


def test_ops_detector_alarms_on_slower_or_dearer_requests_only() -> None:
    rng = np.random.default_rng(0)
    ref = _ops_batch(rng.lognormal(6, 0.3, 500), rng.gamma(4, 0.0005, 500))
    detector = OpsDriftDetector(alpha=0.05).fit(ref, horizon_windows=10, window_rows=60)
    calm = [detector.score(_ops_batch(rng.lognormal(6, 0.3, 60), rng.gamma(4, 0.0005, 60))).alarm
            for _ in range(40)]
    assert sum(calm) <= 2
    slow = detector.score(_ops_batch(rng.lognormal(6.5, 0.3, 60), rng.gamma(4, 0.0005, 60)))
    dear = detector.score(_ops_batch(rng.lognormal(6, 0.3, 60), rng.gamma(4, 0.0008, 60)))
    assert slow.alarm and slow.details["latency_p95_ratio"] > 1.3
    assert dear.alarm and dear.details["cost_ratio"] > 1.3


def test_a_monitor_run_nests_under_its_caller(tmp_path: Path) -> None:
    """A caller's run tree (the demo, a pipeline) holds the monitor run, so the TCO can read it from there."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    rows = [{"prompt": f"what is {i} plus {i}?", "quality": float(i % 3 > 0)} for i in range(120)]
    with ledger.run("demo", "caller") as parent:
        run_monitor(rows[:60], rows[60:], window=20, ledger=ledger, parent_id=parent.id, retrain_cost_usd=10.0)
    (child,) = ledger.list_runs(kind="monitor")
    assert child.parent_id == parent.id and child.results["action"] in ("none", "watch", "retrain")
