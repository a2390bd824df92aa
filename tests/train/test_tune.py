"""`tune`: an Optuna study stored in the ledger's database, pruned trials, every trial metered."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.train.conftest import tiny
from truecost.train.tune import tune


def _config(tmp_path: Path, study: str) -> Any:
    # lr spans 1e-5 (learns almost nothing in 20 steps) to 3e-2, so some trials are clearly worse than others
    return tiny(tmp_path, name=study, max_steps=20, eval={"every_steps": 5, "batches": 2},
                tune={"pruner": "median", "sampler": "random", "startup_trials": 1,
                      "search_space": {"optim.lr": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True}}})



def test_study_in_the_ledger_prunes_and_records_every_trial(tmp_path: Path, ledger: Any) -> None:
    import optuna

    result = tune(_config(tmp_path, "s1"), trials=5, ledger=ledger)
    assert len(result.trials) == 5
    states = {t.state for t in result.trials}
    assert states <= {"complete", "pruned"}
    assert result.best_value == min(t.best_eval_loss for t in result.trials if t.state == "complete")
    assert result.steps_run == sum(t.steps for t in result.trials)
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert result.steps_if_unpruned == result.steps_run + sum(20 - t.steps for t in pruned)

    trial_runs = [r for r in ledger.list_runs(kind="tune") if r.parent_id == result.run_id]
    assert len(trial_runs) == 5
    assert all(r.cost_usd > 0 and r.tokens > 0 for r in trial_runs)
    assert result.total_cost_usd == pytest.approx(sum(r.cost_usd for r in trial_runs))
    assert {r.results["stopped_by"] for r in trial_runs} <= {"completed", "pruned", "early_stopping"}
    # The study itself lives in the same database, readable by any worker.
    study = optuna.load_study(study_name="s1", storage=ledger.url)
    assert len(study.trials) == 5

    # A second worker with the same ledger joins the study instead of starting a new one.
    second = tune(_config(tmp_path, "s1"), trials=1, ledger=ledger)
    assert second.extra["trials_in_study"] == 6


@pytest.mark.postgres
def test_study_shared_through_postgresql(tmp_path: Path, postgres_url: str) -> None:
    from truecost.ledger import Ledger

    ledger = Ledger(postgres_url)
    study = f"pg-study-{uuid.uuid4().hex[:8]}"  # the server may outlive this test
    first = tune(_config(tmp_path, study), trials=1, ledger=ledger)
    second = tune(_config(tmp_path, study), trials=1, ledger=Ledger(postgres_url))
    assert first.extra["trials_in_study"] == 1 and second.extra["trials_in_study"] == 2
    assert len([r for r in ledger.list_runs(kind="tune") if r.parent_id in (first.run_id, second.run_id)]) == 2


def test_cli_tune_json_reports_best_trial_cost_and_savings(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import yaml

    from tests.train.conftest import TINY

    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({**TINY, "max_steps": 6, "eval": {"every_steps": 3, "batches": 2},
                                      "tune": {"sampler": "random", "startup_trials": 1}}))
    result = subprocess.run([sys.executable, "-m", "truecost", "tune", str(config), "--trials", "2", "--json"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert len(data["trials"]) == 2 and data["best_trial"] in (0, 1)
    assert data["total_cost_usd"] == pytest.approx(sum(t["cost_usd"] for t in data["trials"]))
    assert 0.0 <= data["compute_saved_fraction"] < 1.0
