"""`estimate tco --from-ledger` on a ledger that real parts wrote: curate, train, review, monitor and route runs.

Curate, route and the TCO run as the user runs them (the `truecost` program); train and monitor through their
library calls; the review runs are Meter runs whose `headline` is built with the review's own `make_metric` (a
real review needs a model and a minute: tests/review covers it), recorded exactly as `run_review` records it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser import body_attributes
from tests.curate.textgen import article
from tests.train.conftest import tiny
from truecost.config import Config
from truecost.ledger import Ledger, RequestRecord
from truecost.review.results import make_metric

TOPICS = ["library", "bridge", "harbour", "orchard", "railway", "museum", "theatre", "stadium"]


def truecost(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def _curate(url: str, tmp_path: Path) -> dict[str, Any]:
    """Eight articles and three exact copies, de-duplicated by `truecost curate`."""
    docs = [{"id": t, "text": article(t)} for t in TOPICS] + [{"id": f"copy-{t}", "text": article(t)}
                                                               for t in TOPICS[:3]]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    result = truecost("--ledger", url, "curate", str(path), "--output", str(tmp_path / "curated"), "--steps",
                      "exact", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _outcomes(path: Path, n: int, seed: int) -> None:
    """Prompts on two topics: the cheap model is as good as the strong one on cooking, poor on law."""
    rng, lines = random.Random(seed), []
    for i in range(n):
        law = i % 2 == 0
        prompt = (f"explain clause {i} of the lease contract and the tenant's statutory rights" if law else
                  f"give a recipe {i} for baking bread with flour, yeast and an oven")
        small = 0.2 + 0.1 * rng.random() if law else 0.9 + 0.05 * rng.random()
        lines.append({"id": f"q{i}", "prompt": prompt, "outcomes": {
            "small": {"quality": small, "cost": 0.001}, "large": {"quality": 0.9 + 0.05 * rng.random(),
                                                                  "cost": 0.01}}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def _route(url: str, tmp_path: Path) -> None:
    _outcomes(tmp_path / "train.jsonl", 60, 0)
    _outcomes(tmp_path / "test.jsonl", 40, 1)
    fit = truecost("--ledger", url, "route", "fit", "--router", "knn", "--data", str(tmp_path / "train.jsonl"),
                   "--embedder", "tfidf", "--out", str(tmp_path / "knn"))
    assert fit.returncode == 0, fit.stderr
    evaluated = truecost("--ledger", url, "route", "eval", "--router", str(tmp_path / "knn"), "--data",
                         str(tmp_path / "test.jsonl"))
    assert evaluated.returncode == 0, evaluated.stderr


def _review(ledger: Ledger, model: str, correct: list[int], leaks: list[int]) -> str:
    """A review run recorded as `run_review` records it (target in params, rounded metric values in headline)."""
    metrics = [make_metric("performance.accuracy", correct),
               make_metric("security.pii_leakage.attack_success_rate", leaks, better="lower")]
    with ledger.run("review", f"hf:{model}", params={"target": f"hf:{model}", "suites": ["performance",
                                                                                         "security"]}) as run:
        run.results.update({"status": "completed", "stop_reason": None, "requests": len(correct) + len(leaks),
                            "headline": {m.name: round(m.value, 6) for m in metrics}})
    return run.id


def _monitor(ledger: Ledger) -> None:
    """Ten days of traffic whose quality collapses halfway: the monitor's own decision is what is counted."""
    from truecost.monitor import run_monitor

    start, rng = datetime(2026, 3, 1, tzinfo=UTC), random.Random(0)

    def rows(n: int, offset: int, good: float) -> list[dict[str, Any]]:
        return [{"prompt": f"question {i} about {rng.choice(TOPICS)}", "quality": float(rng.random() < good),
                 "timestamp": (start + timedelta(hours=2 * (offset + i))).isoformat()} for i in range(n)]

    run_monitor(rows(80, -100, 0.9), rows(60, 0, 0.9) + rows(60, 60, 0.2), window=30, config=Config(),
                ledger=ledger, embedder="hashing", value_of_quality_usd=5.0)


def _failed_training(ledger: Ledger) -> str:
    with pytest.raises(RuntimeError), ledger.run("train", "crashed: out of memory") as run:
        sum(i * i for i in range(300_000))  # some CPU time, so the lost spend is not zero
        raise RuntimeError("CUDA out of memory (simulated)")
    return run.id


@pytest.mark.slow
def test_estimate_tco_from_ledger_names_every_measured_input(tmp_path: Path) -> None:
    from truecost.train import train

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    curated = _curate(url, tmp_path)
    trained = train(tiny(tmp_path, max_steps=4, data={"max_chars": 40_000}, eval={"every_steps": 2, "batches": 1}),
                    ledger=ledger, project=Config())
    crashed = _failed_training(ledger)
    # The same review result for the poorly and the well-prepared model: a measured null effect.
    poor_review = _review(ledger, "poor-model", [1, 0, 1, 1, 0, 1, 1, 1], [0, 1, 0, 0])
    well_review = _review(ledger, "well-model", [1, 0, 1, 1, 0, 1, 1, 1], [0, 1, 0, 0])
    _monitor(ledger)
    _route(url, tmp_path)

    result = truecost("--ledger", url, "estimate", "tco", "--from-ledger", "--arm", f"{poor_review[:12]}=poor",
                      "--report", str(tmp_path / "report"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    lines = {(line["input"], line["arm"]): line for line in data["lines"]}
    runs = {run.id: run for run in ledger.list_runs()}

    # curate -> duplicate share, with the curate run's id and the share it recorded.
    dup = lines[("duplicate_share", "poor")]
    assert dup["basis"] == "measured" and dup["run_ids"] == [curated["ledger_run_id"]]
    assert dup["value"] == pytest.approx(curated["totals"]["tokens_removed_fraction"])
    assert dup["value"] > 0.2
    assert lines[("duplicate_share", "well")] == {**lines[("duplicate_share", "well")], "basis": "measured",
                                                  "value": 0.0}

    # train -> failed-run share (the crashed run's spend over all training spend); utilisation stays assumed,
    # since a CPU run says nothing of the plan's H100s, and the listing says why.
    failed = lines[("failed_run_share", "well")]
    spend = runs[trained.run_id].cost_usd + runs[crashed].cost_usd
    assert failed["basis"] == "measured" and set(failed["run_ids"]) == {trained.run_id, crashed}
    assert failed["value"] == pytest.approx(runs[crashed].cost_usd / spend) and 0 < failed["value"] < 1
    assert lines[("utilisation_factor", "well")]["basis"] == "assumed"
    assert any("utilisation is not carried" in note for note in data["ledger"]["notes"])

    # review -> both models reviewed alike: the ratio of their bad-output rates is a measured 1, used as null;
    # the base rate of the plan's model stays the assumed one (a reviewed model need not be the plan's).
    for arm, value in (("poor", 1.0), ("well", 1.0)):
        line = lines[("bad_output_ratio", arm)]
        assert line["basis"] == "measured" and set(line["run_ids"]) == {poor_review, well_review}
        assert line["value"] == pytest.approx(value, abs=1e-9)
    assert lines[("bad_output_rate", "poor")]["basis"] == "assumed"
    assert "bad_output_ratio" not in data["headline"]["by_input"]
    assert data["poor"]["human_review_usd"] == pytest.approx(data["well"]["human_review_usd"])

    # monitor -> retrains per year from its decision over the traffic's span.
    monitor_run = next(r for r in runs.values() if r.kind == "monitor")
    days = (datetime.fromisoformat(monitor_run.results["observed_end"])
            - datetime.fromisoformat(monitor_run.results["observed_start"])).total_seconds() / 86400
    retrains = lines[("retrains_per_year", "well")]
    assert retrains["basis"] == "measured" and retrains["run_ids"] == [monitor_run.id]
    assert retrains["value"] == pytest.approx((monitor_run.results["action"] == "retrain") / days * 365)

    # route eval -> the learned router's saving (never a baseline's: the oracle saves more).
    eval_run = next(r for r in runs.values() if r.kind == "route" and r.name == "eval")
    routing = lines[("routing_saving_share", "well")]
    assert routing["basis"] == "measured" and routing["run_ids"] == [eval_run.id]
    assert routing["value"] == pytest.approx(eval_run.results["knn"]["cost_saving_at_best_single_quality"] or 0.0)
    assert eval_run.results["oracle"]["cost_saving_at_best_single_quality"] > routing["value"]

    # The split adds up to the difference; each sensitivity row brackets the headline.
    headline = data["headline"]
    assert sum(headline["by_basis"].values()) == pytest.approx(headline["difference_usd"], abs=0.05)
    assert headline["by_basis"]["measured"] != 0
    for row in data["sensitivity"]["rows"]:
        assert min(row["difference_at_low"], row["difference_at_high"]) - 0.01 <= headline["difference_usd"] \
            <= max(row["difference_at_low"], row["difference_at_high"]) + 0.01
    attrs = body_attributes(Path(data["report_html"]))
    assert attrs["data-errors"] == "0" and attrs["data-charts-rendered"] == attrs["data-charts-total"] != "0"


def test_run_tree_and_arms_pick_the_runs_and_the_gateway_log_beats_a_route_eval(tmp_path: Path) -> None:
    from truecost.estimate.tco import tco_from_ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    outside = _review(ledger, "outside", [0, 0, 0, 0], [1, 1])  # not under the root: read only when named
    with ledger.run("demo", "root") as root:
        with ledger.run("other", "poor arm", parent_id=root.id, params={"tco_arm": "poor"}) as poor:
            pass
        for parent, correct in ((poor.id, [1, 0, 0, 0]), (root.id, [1, 1, 1, 0])):
            with ledger.run("review", "r", parent_id=parent) as run:
                run.results["headline"] = {"performance.accuracy": sum(correct) / 4}
        with ledger.run("route", "eval", parent_id=root.id) as run:
            run.results.update({"knn": {"cost_saving_at_best_single_quality": None}, "oracle": {
                "cost_saving_at_best_single_quality": 0.8}})
        with ledger.run("serve", "gateway", parent_id=root.id) as serve:
            pass
    now = datetime.now(UTC)
    for model, cost, tokens in (("cheap", 0.001, 100), ("cheap", 0.001, 100), ("dear", 0.02, 100)):
        ledger.log_request(RequestRecord(timestamp=now, model=model, cost_usd=cost, prompt_tokens=tokens,
                                         router_score=0.5, run_id=serve.id))
    result = tco_from_ledger(ledger, run_tree=root.id[:10], config=Config())
    ratio = result.inputs["bad_output_ratio"]  # bad-output rates 0.75 (poor) over 0.25 (well)
    assert (ratio.poor.value, ratio.well.value) == (3.0, 1.0) and ratio.poor.basis == ratio.well.basis == "measured"
    assert ratio.poor.low is None  # the runs recorded no item counts: no interval
    routing = result.inputs["routing_saving_share"].well
    # Two of three requests went to the cheap model: $0.022 spent against $0.06 had all gone to "dear".
    assert routing.value == pytest.approx(1 - 0.022 / 0.06) and routing.run_ids == (serve.id,)
    assert result.ledger is not None and result.ledger["runs_read"] == 6 and result.ledger["requests_read"] == 3
    flipped = tco_from_ledger(ledger, run_tree=root.id, arms={poor.id: "well"}, config=Config())
    assert {m["input"] for m in flipped.ledger["measurements"]} & {"bad_output_rate", "bad_output_ratio"} == \
        {"bad_output_rate"}  # both reviews are the well project's now: its own rate, no ratio
    assert flipped.inputs["bad_output_rate"].well.value == pytest.approx(1 - (0.25 + 0.75) / 2)
    named = tco_from_ledger(ledger, run_tree=root.id, arms={outside: "well"}, config=Config())
    # The well project's rates are the mean over its two reviews (bad 0.25 and 1.0).
    assert named.inputs["bad_output_ratio"].poor.value == pytest.approx(0.75 / ((0.25 + 1.0) / 2))
    without_log = Ledger(f"sqlite:///{tmp_path / 'l2.db'}")
    with without_log.run("route", "eval") as run:
        run.results.update({"knn": {"cost_saving_at_best_single_quality": None}})
    never = tco_from_ledger(without_log, config=Config()).inputs["routing_saving_share"]
    assert never.well.value == 0.0 and never.well.basis == "measured"  # the router never matched: no saving


def _rates_run(ledger: Ledger, parent: str, headline: dict[str, float], n_items: int | None) -> str:
    with ledger.run("review", "r", parent_id=parent) as run:
        run.results["headline"] = headline
        if n_items is not None:
            run.results["n_items"] = n_items
    return run.id


def test_reviews_of_both_projects_carry_their_ratio_with_katz_interval(tmp_path: Path) -> None:
    """Accuracy and generation-defect runs combine per project; the ratio's interval matches scipy's."""
    from scipy.stats.contingency import relative_risk

    from truecost.estimate.tco import tco_from_ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    with ledger.run("demo", "root") as root:
        arms = {}
        for arm, accuracy, defects in (("poor", 0.6, 0.2), ("well", 0.75, 0.2)):
            with ledger.run("other", arm, parent_id=root.id, params={"tco_arm": arm}) as project:
                arms[arm] = project.id
            _rates_run(ledger, project.id, {"performance.accuracy": accuracy}, 100)
            _rates_run(ledger, project.id, {"generation.any_defect_rate": defects}, 100)
        _rates_run(ledger, arms["poor"], {"security.pii_leakage.attack_success_rate": 0.5}, 100)  # poor only
    result = tco_from_ledger(ledger, run_tree=root.id, config=Config())
    ratio = result.inputs["bad_output_ratio"].poor
    # bad = 1 - accuracy x (1 - defect rate): 0.52 (52 of 100) and 0.40 (40 of 100); the leak rate of one
    # project only is left out of the comparison, and the listing says so.
    reference = relative_risk(52, 100, 40, 100)
    low, high = reference.confidence_interval(0.95)
    assert ratio.value == pytest.approx(reference.relative_risk)
    assert (ratio.low, ratio.high) == (pytest.approx(low), pytest.approx(high))
    assert result.ledger is not None and any("pii_leakage" in note for note in result.ledger["notes"])
    # The measured interval shows in the sensitivity analysis, as a measured row.
    row = next(r for r in result.sensitivity if r.name == "poor.bad_output_ratio")
    assert row.basis == "measured" and row.difference_at_low < result.difference_usd < row.difference_at_high


def test_ratio_interval_corrects_a_zero_count() -> None:
    from truecost.estimate.tco_ledger import ratio_interval

    ratio, low, high = ratio_interval(0.1, 100, 0.0, 100)
    assert ratio == pytest.approx((10.5 / 101) / (0.5 / 101)) and low is not None and high is not None
    assert 1.0 < low < ratio < high
    assert ratio_interval(0.0, 100, 0.0, 100)[0] == pytest.approx(1.0)
    assert ratio_interval(0.2, None, 0.0, None) == (None, None, None)
    assert ratio_interval(0.2, None, 0.1, 50) == (pytest.approx(2.0), None, None)
