"""The published-runs table as a regression test: median error of p50 GPU-hours and p10-p90 coverage on the shared
pre-training runs of tiers A/A- with the shipped priors (in-sample), the organisation-grouped cross-validation that
the band and the choice of features rest on, and the package's held-out runs that took no part in either."""

from __future__ import annotations

import json
import statistics
from importlib import resources
from pathlib import Path

import pytest

from truecost.estimate.calibration import load_priors
from truecost.estimate.catalogue import find_gpu
from truecost.estimate.fitting import evaluate, fit_priors, summary
from truecost.estimate.runs import PublishedRun, heldout_runs, read_runs


def _runs(shared_data: Path, tiers: tuple[str, ...]) -> list[PublishedRun]:
    path = shared_data / "published_runs" / "runs.csv"
    if not path.exists():
        pytest.skip("no shared published_runs/runs.csv")
    return read_runs(path, tiers=tiers)


def _stored() -> dict:
    return json.loads(resources.files("truecost.estimate").joinpath("data", "priors.json").read_text())


def test_median_error_and_coverage_on_tier_a_runs(shared_data: Path) -> None:
    rows = evaluate(_runs(shared_data, ("A", "A-")))
    for r in rows:
        print(f"{r['model']:28s} {r['gpu']:10s} reported {r['reported_gpu_hours']:>11,.0f}  "
              f"p50 {r['p50_gpu_hours']:>11,.0f}  err {r['error']:+.1%}  {'in' if r['inside'] else 'OUT'}")
    result = summary(rows)
    print(f"in-sample: n={result['runs']}  median |error| {result['median_abs_error']:.1%}  "
          f"coverage {result['coverage']:.0%}")
    assert result["runs"] >= 10
    assert result["median_abs_error"] <= 0.15
    assert result["coverage"] >= 0.80


def test_every_run_has_an_organisation_and_a_date(shared_data: Path) -> None:
    runs = _runs(shared_data, ("A", "A-", "B")) + heldout_runs(scored_only=False)
    assert all(run.organisation != run.model and len(run.published) == 10 for run in runs), \
        [run.model for run in runs if run.organisation == run.model]
    assert len({run.organisation for run in runs}) >= 8


def test_grouped_cross_validation_is_what_the_band_rests_on(shared_data: Path) -> None:
    """Refitting reproduces data/priors.json: the features chosen by organisation-grouped CV, the coefficients and a
    sigma equal to the RMS of the grouped residuals (no hand-tuned constants, no random split)."""
    pytest.importorskip("scipy")
    shipped, stored = load_priors(), _stored()
    runs = [r for r in _runs(shared_data, ("A", "A-", "B")) if r.model in shipped.fitted_on]
    assert len(runs) == len(shipped.fitted_on)
    priors, report = fit_priors(runs)
    assert report["features"] == stored["features"]
    for name, value in priors.coefficients.items():
        assert shipped.coefficients[name] == pytest.approx(value, abs=1e-6)
    assert shipped.sigma_log == pytest.approx(priors.sigma_log, abs=1e-6)
    for label in ("leave_one_out", "grouped_cv", "nested_grouped_cv"):
        s = summary(report[label])
        print(f"{label}: median |error| {s['median_abs_error']:.1%} coverage {s['coverage']:.0%} n={s['runs']}")
    grouped = summary(report["nested_grouped_cv"])
    assert grouped["runs"] >= 10 and grouped["median_abs_error"] <= 0.25 and grouped["coverage"] >= 0.6


def test_held_out_runs_are_scored_beside_the_naive_baseline() -> None:
    """Runs never used to fit or choose the model, scored once. On them the shipped estimate does NOT beat 6ND at
    40% of peak (24% vs 20% at the time of writing): the bound below guards against getting worse, and the docs
    report both figures."""
    runs = heldout_runs()
    rows = evaluate(runs)
    ours = summary(rows)
    naive = statistics.median(
        abs(6 * r.params_active * r.tokens / (0.40 * find_gpu(r.gpu).peak16_tflops * 1e12) / 3600 / r.gpu_hours - 1)
        for r in runs)
    print(f"held-out n={ours['runs']}: truecost {ours['median_abs_error']:.1%} (coverage {ours['coverage']:.0%}), "
          f"6ND@40% {naive:.1%}")
    assert ours["runs"] >= 6
    assert ours["median_abs_error"] <= 0.30
    assert ours["coverage"] >= 0.5


def test_six_nd_at_40_percent_is_the_baseline_to_beat(shared_data: Path) -> None:
    runs = _runs(shared_data, ("A", "A-"))
    baseline = [abs(6 * r.params_active * r.tokens / (0.40 * find_gpu(r.gpu).peak16_tflops * 1e12) / 3600
                    / r.gpu_hours - 1) for r in runs]
    ours = summary(evaluate(runs))["median_abs_error"]
    print(f"6ND@40% median |error| {statistics.median(baseline):.1%} vs truecost {ours:.1%}")
    assert ours < statistics.median(baseline)
