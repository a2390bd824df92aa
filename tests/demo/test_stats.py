"""The demo's statistics against independent references (scipy, brute force, closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from truecost.demo.routing import saving_at_strong_quality
from truecost.demo.stats import (
    compute_ratio,
    exposure,
    mean_interval,
    newcombe_difference,
    paired_bootstrap,
    steps_to_reach,
    wilson,
)


def test_mean_interval_matches_scipy_t_interval() -> None:
    values = [2.1, 2.5, 1.9, 2.4]
    mean, low, high = mean_interval(values)
    ref = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values)) and (low, high) == pytest.approx(ref)
    assert mean_interval([3.0]) == (3.0, 3.0, 3.0)


def test_wilson_matches_scipy_binomtest() -> None:
    for k, n in ((0, 21), (7, 40), (40, 40)):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert wilson(0, 21)[1] > 0  # 0 of 21 is not certainty


def test_newcombe_contains_the_difference_and_is_not_degenerate() -> None:
    diff, low, high = newcombe_difference(12, 100, 3, 100)
    assert diff == pytest.approx(0.09) and low < diff < high and low > 0
    _, low0, high0 = newcombe_difference(0, 50, 0, 50)
    assert low0 < 0 < high0


def test_paired_bootstrap_covers_a_known_shift_and_pairs_items() -> None:
    rng = np.random.default_rng(1)
    item = rng.normal(0, 5, 200)  # large item-to-item spread shared by both models
    well = item + rng.normal(0, 0.1, 200)
    poor = item + 0.3 + rng.normal(0, 0.1, 200)
    diff, low, high = paired_bootstrap(poor, well, seed=2)
    assert low < 0.3 < high and high - low < 0.1  # pairing removes the shared item spread
    assert diff == pytest.approx(float(np.mean(poor - well)))
    same = paired_bootstrap([1.0, 2.0], [1.0, 2.0])
    assert same == (0.0, 0.0, 0.0)
    weighted, _, _ = paired_bootstrap([1.0, 3.0], [0.0, 0.0], weights=[3, 1])
    assert weighted == pytest.approx(1.5)


def test_exposure_is_the_secret_sharers_rank_formula() -> None:
    # The canary is the likeliest of 16 candidates: exposure = log2(16) = 4 bits.
    assert exposure(0.5, [1.0] * 15) == pytest.approx(4.0)
    # Ranked 8th of 16 (7 candidates likelier): log2(16) - log2(8) = 1 bit.
    assert exposure(5.0, [1.0] * 7 + [9.0] * 8) == pytest.approx(1.0)
    brute = [math.log2(16) - math.log2(1 + sum(c < x for c in range(15))) for x in range(15)]
    assert [exposure(x, list(range(15))) for x in range(15)] == pytest.approx(brute)


def test_steps_to_reach_interpolates_and_says_never() -> None:
    curve = [(0, 3.0), (10, 2.0), (20, 1.5)]
    assert steps_to_reach(curve, 2.5) == pytest.approx(5.0)
    assert steps_to_reach(curve, 3.5) == 0.0
    assert steps_to_reach(curve, 1.0) is None


def test_compute_ratio_from_curves() -> None:
    well = [(0, 3.0), (10, 2.0), (20, 1.0)]
    poor = [(0, 3.0), (10, 2.5), (20, 2.0)]  # ends where well was at step 10: twice the compute
    result = compute_ratio(poor, well)
    assert result["ratio"] == pytest.approx(2.0) and result["lower_bound"]
    better = compute_ratio(well, poor)  # the "poor" arm ends better: ratio below 1
    assert better["ratio"] == pytest.approx(0.5) and not better["lower_bound"]


def test_routing_saving_against_a_hand_computed_case() -> None:
    # The weak model matches the strong one on every prompt at a quarter of the price: a perfect router saves 75%.
    quality = np.array([[0.5, 0.5]] * 10)
    cost = np.array([[1.0, 4.0]] * 10)
    gap = np.zeros(10) - 0.01  # predicted: the strong model is never better
    assert saving_at_strong_quality(gap, quality, cost, np.arange(10)) == pytest.approx(0.75)
    # The strong model is better on half the prompts and the router knows which: it pays for those only.
    quality = np.array([[0.2, 0.8]] * 5 + [[0.5, 0.5]] * 5)
    gap = quality[:, 1] - quality[:, 0] - 1e-3
    assert saving_at_strong_quality(gap, quality, cost, np.arange(10)) == pytest.approx(1 - (5 * 4 + 5 * 1) / 40)


def test_bad_output_ratio_is_the_tco_formula_with_a_paired_interval() -> None:
    from truecost.demo.stats import bad_output_ratio
    from truecost.estimate.tco_ledger import ReviewRates

    rng = np.random.default_rng(3)
    correct_poor, correct_well = rng.random(300) < 0.55, rng.random(300) < 0.7
    defect_poor, defect_well = rng.random(300) < 0.3, rng.random(300) < 0.1
    ratio, low, high = bad_output_ratio((correct_poor, correct_well), (defect_poor, defect_well), seed=1)

    def tco(correct, defect) -> float:  # what the TCO computes from the two review runs' headline rates
        rates = ReviewRates([], {"performance.accuracy": float(np.mean(correct)),
                                 "generation.any_defect_rate": float(np.mean(defect))}, {})
        return rates.bad(rates.means)

    assert ratio == pytest.approx(tco(correct_poor, defect_poor) / tco(correct_well, defect_well))
    assert low is not None and high is not None and 1.0 < low < ratio < high
    same = bad_output_ratio(([1.0, 0.0], [1.0, 0.0]), ([0.0, 1.0], [0.0, 1.0]))
    assert same[0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bad_output_ratio(([1.0], [1.0, 0.0]), ([0.0], [0.0]))


def test_bad_output_effect_pairs_review_and_scan_and_says_when_no_ratio_exists() -> None:
    from truecost.demo.summary import _bad_output

    flags = {"poor": [{"pii": True}, {"pii": False}, {"pii": False}, {"pii": True}],
             "well": [{"pii": False}, {"pii": False}, {"pii": True}, {"pii": False}]}
    correct = {"poor": [1.0, 0.0, 1.0, 1.0], "well": [1.0, 1.0, 1.0, 0.0]}
    effect = _bad_output(correct, flags, "tiny", 0)["bad_output_ratio"]
    # By hand: poor 1 - 0.75 x (1 - 0.5) = 0.625; well 1 - 0.75 x (1 - 0.25) = 0.4375.
    assert effect["bad_output_rate"] == pytest.approx({"poor": 0.625, "well": 0.4375})
    assert effect["poor"] == pytest.approx(0.625 / 0.4375) and effect["n_items"] == 4
    perfect = {"poor": correct["poor"], "well": [1.0] * 4}
    clean = {"poor": flags["poor"], "well": [{"pii": False}] * 4}
    none = _bad_output(perfect, clean, "tiny", 0)["bad_output_ratio"]
    assert none["poor"] is None and none["ci_low"] is None  # a ratio over a zero rate is not invented
    assert _bad_output({"poor": [1.0], "well": [1.0]}, flags, "tiny", 0) == {}  # items must pair up


def test_defect_rate_effect_of_two_clean_models_is_not_certain_equality() -> None:
    # 0 of 100 against 0 of 100: a bootstrap over prompts gave [0, 0]; the difference is not known to be exactly 0.
    from truecost.demo.summary import rate_effect

    clean = [{"pii": False, "planted": False}] * 100
    effect = rate_effect({"poor": clean, "well": clean}, "any", "m")
    assert effect.poor == effect.well == 0.0
    assert effect.ci_low < 0 < effect.ci_high
    assert (effect.ci_low, effect.ci_high) == pytest.approx(newcombe_difference(0, 100, 0, 100)[1:])
    assert effect.ci_high == pytest.approx(wilson(0, 100)[1])  # Newcombe at 0 vs 0 is the Wilson bound of either
    dirty = [{"pii": True, "planted": False}] * 10 + [{"pii": False, "planted": False}] * 90
    assert rate_effect({"poor": dirty, "well": clean}, "pii", "m").poor == pytest.approx(0.1)
