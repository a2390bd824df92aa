"""The TCO's split by basis and its sensitivity, checked against brute force and against re-running the TCO."""

from __future__ import annotations

import itertools
import math

import pytest

from truecost.config import Config
from truecost.estimate.tco import ARMS, InputValue, Plan, arm_values, build_tco, project_costs
from truecost.estimate.tco_ledger import Measurement
from truecost.units import DAYS_PER_MONTH

# Make most inputs equal in both projects, so the brute force over every order of switching stays small.
EQUAL = {"serving_overprovision": 1.0, "monitoring_tools_usd_per_month": 0.0, "monitoring_hours_per_month": 5.0,
         "minutes_per_fix": 6.0, "routing_saving_share": 0.0}


def _measured(name: str, well: float, poor: float) -> list[Measurement]:
    return [Measurement(name, "well", well, ("run-w",), "test"), Measurement(name, "poor", poor, ("run-p",), "test")]


def test_shapley_split_equals_the_mean_over_every_switching_order() -> None:
    result = build_tco(Config(), EQUAL, _measured("bad_output_rate", 0.03, 0.09))
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
    result = build_tco(Config())
    # Incident hours enter the total as hours x wage x months, independent of every other differing input.
    assert result.by_input["incident_hours_per_month"] == pytest.approx((30 - 4) * 100.0 * 12, abs=0.01)
    assert result.by_basis == {"measured": 0.0, "sourced": 0.0, "assumed": pytest.approx(result.difference_usd,
                                                                                          abs=0.05)}


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
        assert min(row.difference_at_low, row.difference_at_high) <= headline <= max(row.difference_at_low,
                                                                                       row.difference_at_high)
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
    good = [Measurement("bad_output_rate", "well", 0.01, ("run-w",), "review of the well-prepared model")]
    kept = build_tco(Config(), measurements=good)
    assert kept.inputs["bad_output_rate"].poor.value == 0.06 and not kept.aligned
    assert kept.inputs["bad_output_rate"].effect_basis == "assumed" and kept.by_input["bad_output_rate"] > 0
