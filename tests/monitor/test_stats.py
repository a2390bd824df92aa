"""The statistics against brute-force references and their own null distributions."""

from __future__ import annotations

import numpy as np
import pytest

from truecost.monitor.stats import (
    calibrate_cusum_threshold,
    cusum_path,
    exceedance_p_value,
    median_bandwidth,
    mmd_permutation_test,
    psi,
)


def _mmd2_brute(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-((a - b) ** 2).sum() / (2 * bandwidth**2)))

    xx = sum(k(a, b) for a in x for b in x) / len(x) ** 2
    yy = sum(k(a, b) for a in y for b in y) / len(y) ** 2
    xy = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return xx + yy - 2 * xy


def test_mmd_statistic_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(15, 3)), rng.normal(0.5, 1.0, size=(9, 3))
    bandwidth = median_bandwidth(x)
    mmd2, _ = mmd_permutation_test(x, y, bandwidth, 50, rng)
    assert mmd2 == pytest.approx(_mmd2_brute(x, y, bandwidth), rel=1e-9)


def test_mmd_p_values_hold_their_level_under_the_null_and_detect_a_shift() -> None:
    rng = np.random.default_rng(1)
    null_p = []
    for _ in range(100):
        x, y = rng.normal(size=(60, 4)), rng.normal(size=(20, 4))
        null_p.append(mmd_permutation_test(x, y, median_bandwidth(x), 100, rng)[1])
    assert np.mean(np.array(null_p) < 0.05) <= 0.10
    assert np.mean(np.array(null_p) < 0.5) > 0.3  # not degenerate: p-values spread over (0, 1)
    x, y = rng.normal(size=(60, 4)), rng.normal(1.0, 1.0, size=(20, 4))
    assert mmd_permutation_test(x, y, median_bandwidth(x), 100, rng)[1] < 1e-4


def test_cusum_path_matches_the_recursion() -> None:
    values = np.array([1, 0, 0, 1, 0, 0, 0, 1], dtype=float)
    level, expected = 0.0, []
    for v in values:
        level = max(0.0, level + 0.8 - v - 0.05)
        expected.append(level)
    assert cusum_path(values, 0.8, 0.05).tolist() == pytest.approx(expected)


def test_calibrated_cusum_holds_the_false_alarm_rate_with_an_estimated_reference() -> None:
    """Fresh reference samples each run (independent of the bootstrap inside the calibration)."""
    rng = np.random.default_rng(2)
    alpha, horizon, runs, alarms = 0.05, 200, 300, 0
    for _ in range(runs):
        reference = (rng.random(150) < 0.75).astype(float)
        h = calibrate_cusum_threshold(reference, horizon, 0.05, alpha, rng, simulations=500)
        stream = (rng.random(horizon) < 0.75).astype(float)
        alarms += bool(cusum_path(stream, reference.mean(), 0.05).max() > h)
    assert alarms / runs <= alpha + 0.03  # 0.03: ~2.4 binomial standard errors at 300 runs


def test_psi_matches_hand_computation_and_is_zero_on_identical_samples() -> None:
    reference = np.arange(100, dtype=float)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    current = np.concatenate([np.zeros(50), np.full(50, 99.0)])
    # Two reference deciles hold all of current: 0.5 each vs 0.1; eight hold none (clipped to 1e-4).
    expected = 2 * (0.5 - 0.1) * np.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-6)


def test_exceedance_test_flags_slower_requests_only() -> None:
    rng = np.random.default_rng(3)
    reference = rng.lognormal(6, 0.3, 400)
    assert exceedance_p_value(reference, rng.lognormal(6, 0.3, 60))[1] > 0.001
    assert exceedance_p_value(reference, rng.lognormal(6.5, 0.3, 60))[1] < 1e-6


def test_spectral_null_holds_its_level_on_a_two_topic_reference() -> None:
    """A reference mixing two clusters (as two subjects do) has one dominant eigenvalue and a heavy-tailed null."""
    from truecost.monitor.stats import mmd_spectral_null, spectral_p_value

    rng = np.random.default_rng(4)

    def sample(size: int) -> np.ndarray:
        centres = np.where(rng.random(size) < 0.5, -1.5, 1.5)[:, None] * np.eye(8)[0]
        return centres + rng.normal(size=(size, 8))

    reference = sample(200)
    bandwidth = median_bandwidth(reference)
    null = mmd_spectral_null(reference, bandwidth, rng, draws=20_000)
    p_values = []
    for _ in range(300):
        window = sample(50)
        mmd2, _ = mmd_permutation_test(reference, window, bandwidth, 20, rng)
        p_values.append(spectral_p_value(mmd2, 200, 50, null))
    p = np.array(p_values)
    assert np.mean(p < 0.01) <= 0.025 and np.mean(p < 0.05) <= 0.08
    assert 0.25 < np.mean(p < 0.5) < 0.75
    shifted = sample(50) + 2 * np.eye(8)[1]
    assert spectral_p_value(mmd_permutation_test(reference, shifted, bandwidth, 20, rng)[0], 200, 50, null) < 1e-3
