"""The TCO's split by basis and its sensitivity, checked against brute force and against re-running the TCO."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from truecost.config import Config
from truecost.estimate.tco import ARMS, InputValue, Plan, arm_values, build_tco, project_costs
from truecost.estimate.tco_ledger import Measurement
from truecost.units import DAYS_PER_MONTH

# Four of the optional levers turned on, so several inputs differ and the brute force has orders to average over.
LEVERS_ON = {"poor.retrains_per_year": 12, "poor.utilisation_factor": 0.6, "poor.failed_run_share": 1 / 3,
             "poor.incident_hours_per_month": 30}


def _measured(name: str, well: float, poor: float) -> list[Measurement]:
    return [Measurement(name, "well", well, ("run-w",), "test"), Measurement(name, "poor", poor, ("run-p",), "test")]


def test_shapley_split_equals_the_mean_over_every_switching_order() -> None:
    result = build_tco(Config(), LEVERS_ON, _measured("bad_output_rate", 0.03, 0.09))
    players = [name for name, item in result.inputs.items() if item.differs]
    assert set(players) == {"retrains_per_year", "duplicate_share", "utilisation_factor", "failed_run_share",
                            "bad_output_rate", "incident_hours_per_month"}
    well, poor = arm_values(result.inputs, "well"), arm_values(result.inputs, "poor")
    plan = _plan()
    brute = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:  # switch the poor values in one at a time, in every order
        mixed = dict(well)
        before = project_costs(mixed, plan)["total_usd"]
        for name in order:
            mixed[name] = poor[name]
            after = project_costs(mixed, plan)["total_usd"]
            brute[name] += (after - before) / len(orders)
            before = after
    for name in players:
        assert result.by_input[name] == pytest.approx(brute[name], abs=0.01)
    assert sum(result.by_basis.values()) == pytest.approx(result.difference_usd, abs=0.05)
    # bad_output_rate is measured on both sides; everything else differing is assumed or sourced-vs-assumed.
    assert result.by_basis["measured"] == pytest.approx(brute["bad_output_rate"], abs=0.01)
    assert result.by_basis["assumed"] == pytest.approx(result.difference_usd - brute["bad_output_rate"], abs=0.05)


def _plan() -> Plan:
    t = Config().target
    return Plan(t.horizon_months, t.requests_per_day * DAYS_PER_MONTH * t.horizon_months)


def test_an_additive_input_gets_exactly_its_own_effect() -> None:
    result = build_tco(Config(), {"poor.incident_hours_per_month": 30})
    # Incident hours enter the total as hours x wage x months, independent of every other differing input.
    assert result.by_input["incident_hours_per_month"] == pytest.approx((30 - 4) * 100.0 * 12, abs=0.01)
    assert result.by_basis == {"measured": 0.0, "sourced": 0.0, "assumed": pytest.approx(result.difference_usd,
                                                                                          abs=0.05)}


def test_no_assumption_tells_the_projects_apart_until_a_lever_is_turned_on() -> None:
    from truecost.estimate.tco import LEVERS

    result = build_tco(Config())
    for item in result.inputs.values():
        if item.well.basis == item.poor.basis == "assumed":
            assert item.well.value == item.poor.value, item.name
    # Only the sourced duplicate share (against the curated project's none) differs by default.
    assert set(result.by_input) == {"duplicate_share"}
    data = result.to_dict()
    assert [lv["set"] for lv in data["optional_levers"]] == [lv.to_dict()["set"] for lv in LEVERS]
    lever = LEVERS[0]
    on = build_tco(Config(), {f"{lever.arm}.{lever.input}": lever.value})
    assert on.by_input[lever.input] > 0 and on.inputs[lever.input].effect_basis == "assumed"
    assert on.by_basis["assumed"] == pytest.approx(on.difference_usd, abs=0.05)
    assert lever.input not in {lv["input"] for lv in on.to_dict()["optional_levers"]}


def test_transfer_rule_a_measured_ratio_on_an_assumed_base_counts_as_measured() -> None:
    """The demo's rule: a small model's reviews carry their ratio (poor over well), applied to the plan's base
    rate; the difference that produces is the measured effect's, the base only scales it."""
    ratio = [Measurement("bad_output_ratio", "poor", 1.5, ("run-p", "run-w"), "test", low=1.1, high=2.0),
             Measurement("bad_output_ratio", "well", 1.0, ("run-p", "run-w"), "test")]
    result = build_tco(Config(), measurements=ratio)
    cfg, plan = Config(), _plan()
    base = result.inputs["bad_output_rate"].well.value
    assert result.inputs["bad_output_rate"].poor.value == base  # the base is shared, not carried from the model
    # Brute force: the extra reviews the ratio causes on the plan's traffic.
    extra = plan.requests * base * (1.5 - 1.0) * 0.02 * 5.0 / 60.0 * 40.0
    assert result.by_input["bad_output_ratio"] == pytest.approx(extra, abs=0.01)
    assert result.by_basis["measured"] == pytest.approx(extra, abs=0.01)
    assert result.by_basis["measured"] + result.by_basis["assumed"] == pytest.approx(result.difference_usd, abs=0.05)
    # The base rate is an assumption moved in the sensitivity analysis; the headline's ratio part scales with it.
    rows = {row.name: row for row in result.sensitivity}
    base_row = rows["bad_output_rate"]
    assert base_row.basis == "assumed"
    moved = build_tco(cfg, {"bad_output_rate": base_row.high}, ratio)
    assert moved.by_input["bad_output_ratio"] == pytest.approx(extra * base_row.high / base, rel=1e-6)
    # The measured interval is a row of its own (basis measured), left out of the assumptions' joint range.
    interval = rows["poor.bad_output_ratio"]
    assert interval.basis == "measured" and (interval.low, interval.high) == (1.1, 2.0)
    at_high = build_tco(cfg, measurements=[replace(ratio[0], value=2.0), ratio[1]])
    assert interval.difference_at_high == pytest.approx(at_high.difference_usd, abs=0.02)
    without = build_tco(cfg, measurements=[replace(ratio[0], low=None, high=None), ratio[1]])
    assert result.sensitivity_range_usd == without.sensitivity_range_usd


def test_a_user_lever_never_overrides_a_measured_ratio() -> None:
    ratio = [Measurement("bad_output_ratio", "poor", 1.0, ("r",), "test"),
             Measurement("bad_output_ratio", "well", 1.0, ("r",), "test")]
    result = build_tco(Config(), {"poor.bad_output_ratio": 3}, ratio)
    assert result.inputs["bad_output_ratio"].poor.value == 1.0 and "bad_output_ratio" not in result.by_input
    assert any("poor.bad_output_ratio" in line for line in result.ignored_overrides)


def test_a_measured_null_effect_carries_nothing_and_is_not_overridden() -> None:
    measured = _measured("bad_output_rate", 0.2, 0.2)
    result = build_tco(Config(), {"poor.bad_output_rate": 0.5}, measured)
    item = result.inputs["bad_output_rate"]
    assert item.poor.value == item.well.value == 0.2 and item.effect_basis == "measured"
    assert "bad_output_rate" not in result.by_input
    assert any("poor.bad_output_rate" in line for line in result.ignored_overrides)
    assert all(not row.name.endswith("bad_output_rate") for row in result.sensitivity)  # measured: not moved


def test_each_sensitivity_row_is_the_tco_rerun_with_that_value() -> None:
    result = build_tco(Config())
    headline = result.difference_usd
    swings = [row.swing for row in result.sensitivity]
    assert swings == sorted(swings, reverse=True) and swings[0] > 0
    for row in result.sensitivity[:6]:
        key = row.name  # `input` (both projects) or `arm.input`
        low, high = build_tco(Config(), {key: row.low}), build_tco(Config(), {key: row.high})
        assert row.difference_at_low == pytest.approx(low.difference_usd, abs=0.02)
        assert row.difference_at_high == pytest.approx(high.difference_usd, abs=0.02)
        assert min(row.difference_at_low, row.difference_at_high) - 0.01 <= headline \
            <= max(row.difference_at_low, row.difference_at_high) + 0.01  # the headline is rounded to cents
    low, high = result.sensitivity_range_usd
    assert low <= min(min(r.difference_at_low, r.difference_at_high) for r in result.sensitivity)
    assert high >= max(max(r.difference_at_low, r.difference_at_high) for r in result.sensitivity)
    assert low <= headline <= high


def test_every_input_has_a_basis_and_sourced_ones_cite_a_dated_source() -> None:
    result = build_tco(Config())
    for item in result.inputs.values():
        for arm in ARMS:
            value: InputValue = item.arm(arm)
            assert value.basis in ("measured", "sourced", "assumed") and value.source
            assert math.isfinite(value.value)
    dup = result.inputs["duplicate_share"].poor
    assert dup.basis == "sourced" and "arXiv:2310.20707" in dup.source and "2023" in dup.source
    data = result.to_dict()
    assert set(data["headline"]["by_basis"]) == {"measured", "sourced", "assumed"}
    assert {a["name"] for a in data["assumptions"]} >= {"retrains_per_year", "bad_output_rate"}


def test_an_assumption_may_not_reverse_what_the_other_project_measured() -> None:
    bad = [Measurement("bad_output_rate", "well", 0.5, ("run-w",), "review of the well-prepared model")]
    reversed_ = build_tco(Config(), measurements=bad)
    poor = reversed_.inputs["bad_output_rate"].poor
    assert poor.value == 0.5 and poor.basis == "assumed" and "measured well value" in poor.source
    assert reversed_.aligned and "bad_output_rate" not in reversed_.by_input
    # Nor invent one: the poor project's unmeasured base rate follows the measured one.
    good = [Measurement("bad_output_rate", "well", 0.01, ("run-w",), "review of the well-prepared model")]
    invented = build_tco(Config(), {"poor.bad_output_rate": 0.06}, measurements=good)
    assert invented.inputs["bad_output_rate"].poor.value == 0.01 and invented.aligned
    assert "bad_output_rate" not in invented.by_input
    # An effect the user believes in goes through the ratio lever, and counts as assumed.
    lever = build_tco(Config(), {"poor.bad_output_ratio": 3}, measurements=good)
    assert lever.inputs["bad_output_ratio"].effect_basis == "assumed" and lever.by_input["bad_output_ratio"] > 0
