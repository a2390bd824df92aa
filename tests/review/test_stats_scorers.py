"""Statistics and scorers against hand-worked answers and an independent library (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from truecost.review import scorers
from truecost.review.stats import compare, confidence_interval, stat_gap, stat_p95


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) score interval from its closed form, as an independent reference."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 21), (21, 21), (1, 1), (7, 40), (0, 1)])
def test_proportions_get_a_wilson_interval_that_never_collapses(k: int, n: int) -> None:
    point, low, high, method = confidence_interval([1.0] * k + [0.0] * (n - k))
    assert method == "wilson" and point == pytest.approx(k / n)
    assert (low, high) == pytest.approx(_wilson_by_hand(k, n), abs=1e-9)
    assert high > low  # today's percentile bootstrap gave [0, 0] for 0/21 and [1, 1] for n = 1
    if k == 0:
        assert low == pytest.approx(0.0, abs=1e-12) and high > 0.1  # 0/21: upper bound about 0.155


def test_other_statistics_get_scipy_bca() -> None:
    values = np.random.default_rng(1).lognormal(0.0, 1.0, size=200)
    point, low, high, method = confidence_interval(values, "p50", n_resamples=2000, seed=2)
    ref = scipy_stats.bootstrap((values,), np.median, method="BCa", n_resamples=2000,
                                rng=np.random.default_rng(2)).confidence_interval
    assert method == "bca" and point == pytest.approx(np.median(values))
    assert low == pytest.approx(ref.low, rel=0.05) and high == pytest.approx(ref.high, rel=0.05)
    assert confidence_interval([2.0], "p50")[3] == "none"  # one latency: no interval rather than [x, x]


def test_percentile_and_gap_statistics_by_hand() -> None:
    assert stat_p95(np.arange(1, 101, dtype=float)) == pytest.approx(95.05)  # numpy 'linear' definition
    rows = np.array([[1, 1], [1, 1], [0, 1], [1, 1], [1, 0], [0, 0], [0, 0], [0, 0]], dtype=float)
    assert stat_gap(rows) == pytest.approx(0.75 - 0.25)


def test_compare_flags_only_significant_regressions() -> None:
    rng = np.random.default_rng(0)
    good = (rng.random(200) < 0.8).astype(float).tolist()
    bad = (rng.random(200) < 0.5).astype(float).tolist()
    same = (rng.random(200) < 0.8).astype(float).tolist()
    assert compare(bad, good, "mean", "higher").regression
    assert not compare(same, good, "mean", "higher").regression
    assert not compare(good, bad, "mean", "higher").regression  # an improvement is not a regression
    # 'ideal' metrics: moving away from 0.5 is worse, in either direction.
    fair = [1.0, 0.0] * 100
    skewed = [1.0] * 170 + [0.0] * 30
    assert compare(skewed, fair, "mean", "ideal", 0.5).regression
    assert not compare(fair, skewed, "mean", "ideal", 0.5).regression


@pytest.mark.parametrize(("scorer", "response", "expected", "kwargs", "want"), [
    ("exact", "  Ottawa. ", "ottawa", {}, 1.0),
    ("exact", "It is Ottawa", "Ottawa", {}, 0.0),
    ("contains", "Plants take in carbon dioxide.", "carbon dioxide", {}, 1.0),
    ("contains", "The symbol for gold is Au.", "Au", {}, 1.0),
    ("contains", "It is used because it shines", "Au", {}, 0.0),
    ("numeric", "The answer is 1,250.0 eggs", "1250", {}, 1.0),
    ("numeric", "about 124", "125", {}, 0.0),
    ("numeric", "3.14159", "3.14", {"tolerance": 0.01}, 1.0),
    ("regex", "Date: 05/03/2024", r"\b05/03/2024\b", {}, 1.0),
    ("choice", "(C) 29", "C", {"choices": ["21", "27", "29", "33"]}, 1.0),
    ("choice", "Answer: B", "Mercury", {"choices": ["Venus", "Mercury", "Mars"]}, 1.0),
    ("choice", "I think it is Venus", "Mercury", {"choices": ["Venus", "Mercury", "Mars"]}, 0.0),
    ("choice", "anything", "B", {"choices": ["x", "y"], "picked": 1}, 1.0),
])
def test_scorers_on_hand_made_cases(scorer: str, response: str, expected: str, kwargs: dict, want: float) -> None:
    assert scorers.score(scorer, response, expected, **kwargs) == want
