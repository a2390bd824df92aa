"""Statistics and scorers against hand-worked answers and an independent library (scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from truecost.review import scorers
from truecost.review.stats import bootstrap_ci, compare, stat_gap, stat_p95


def test_bootstrap_mean_interval_matches_scipy() -> None:
    values = np.random.default_rng(1).normal(3.0, 2.0, size=300)
    point, low, high = bootstrap_ci(values, "mean", n_resamples=4000, seed=2)
    ref = scipy_stats.bootstrap((values,), np.mean, method="percentile", n_resamples=4000,
                                random_state=np.random.default_rng(3)).confidence_interval
    assert point == pytest.approx(values.mean())
    assert low == pytest.approx(ref.low, abs=0.04)
    assert high == pytest.approx(ref.high, abs=0.04)


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
