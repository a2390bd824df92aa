"""`fit_router` and `evaluate_routers` meter themselves when given a ledger (what `truecost route fit|eval` record)
and record nothing without one; the eval record carries the saving the TCO reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.route._data import mmlu, mmlu_config
from truecost.estimate.tco_ledger import read_measurements
from truecost.ledger import Ledger
from truecost.route import evaluate_routers, fit_router


def test_a_ledger_given_to_fit_and_eval_records_both_runs(shared_data: Path, tmp_path: Path) -> None:
    train, test = mmlu(shared_data).split(0.5, seed=1)
    train, test = train.subset(range(200)), test.subset(range(150))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with ledger.run("demo", "caller") as parent:
        fitted = fit_router("knn", train, embedder="tfidf", out=tmp_path / "knn", ledger=ledger,
                            parent_id=parent.id, config=mmlu_config(), params={"data": "train half"})
        results = evaluate_routers(test, routers={"knn": fitted.router}, ledger=ledger, parent_id=parent.id)
    assert fitted.run_id is not None
    fit_run = ledger.get_run(fitted.run_id)
    assert (fit_run.kind, fit_run.name, fit_run.status, fit_run.parent_id) == ("route", "fit knn", "completed",
                                                                               parent.id)
    assert fit_run.params["data"] == "train half" and fit_run.params["router"] == "knn"
    assert fit_run.results == {"queries": 200, "models": train.models, "out": str(tmp_path / "knn"),
                               "embedder": "tfidf"}
    (eval_run,) = [r for r in ledger.list_runs(kind="route") if r.name == "eval"]
    assert eval_run.parent_id == parent.id
    knn = results["held_out"]["routers"]["knn"]
    assert eval_run.results["knn"] == {k: v for k, v in knn.items() if k != "frontier"}
    assert set(eval_run.results) == {"random", "zero", "oracle", "knn"}
    # The TCO reads the routing saving from this very run.
    measurements, _ = read_measurements(ledger, config=mmlu_config())
    (saving,) = [m for m in measurements if m.input == "routing_saving_share" and m.arm == "well"]
    assert saving.run_ids == (eval_run.id,)
    assert saving.value == pytest.approx(knn["cost_saving_at_best_single_quality"] or 0.0)


def test_without_a_ledger_fit_and_eval_record_nothing(shared_data: Path, tmp_path: Path) -> None:
    train, test = mmlu(shared_data).split(0.5, seed=1)
    fitted = fit_router("knn", train.subset(range(100)), embedder="tfidf")
    assert fitted.run_id is None
    evaluate_routers(test.subset(range(50)), routers={"knn": fitted.router})
    assert not (tmp_path / ".truecost").exists()  # the working directory's default ledger was never opened
