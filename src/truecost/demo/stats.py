"""The demo's statistics, as pure functions: 95% intervals, paired differences, exposure and compute ratios.

An effect is reported with the interval it was measured with: over held-out items (a paired bootstrap when both
models saw the same items, Wilson for a share), or over seeds (Student's t). Each result says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Effect:
    """One measured effect: the value for each data preparation, the difference's 95% interval and what it is over."""

    poor: float
    well: float
    ci_low: float | None  # interval of (poor - well), or of the ratio for a ratio effect
    ci_high: float | None
    n_seeds: int
    n_items: int
    model: str
    interval_over: str  # "items", "seeds" or "items and seeds"
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): Student's t 95% interval of the mean (over seeds); the mean twice for one value."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def paired_bootstrap(poor: Sequence[float], well: Sequence[float], *, weights: Sequence[float] | None = None,
                     resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(difference, low, high) of weighted means poor - well over the same items, percentile bootstrap over items.

    Resampling items, not tokens, keeps the correlation between the two models' scores on one item.
    """
    a, b = np.asarray(poor, dtype=float), np.asarray(well, dtype=float)
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=float)
    if len(a) != len(b) or len(a) != len(w) or len(a) == 0:
        raise ValueError("paired_bootstrap needs two equal-length, non-empty score lists")
    point = float((a * w).sum() / w.sum() - (b * w).sum() / w.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    ws = w[idx]
    diffs = ((a[idx] * ws).sum(1) - (b[idx] * ws).sum(1)) / ws.sum(1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return point, float(low), float(high)


def bad_output_rate(correct: np.ndarray, defective: np.ndarray) -> float:
    """1 - accuracy x (1 - defect rate): the TCO's bad-output rate of one model (`truecost.estimate.tco_ledger`)."""
    return float(1.0 - correct.mean() * (1.0 - defective.mean()))


def bad_output_ratio(correct: tuple[Sequence[float], Sequence[float]], defective: tuple[Sequence[float],
                     Sequence[float]], *, resamples: int = 2000, seed: int = 0
                     ) -> tuple[float | None, float | None, float | None]:
    """(ratio, low, high): poor's bad-output rate over well's, with a percentile bootstrap over items.

    `correct` and `defective` are (poor, well) per-item scores on the same items (item i: the same held-out
    document reviewed and prompted), so items are resampled in pairs. A draw where well's rate is 0 is left out.
    """
    c = [np.asarray(x, dtype=float) for x in correct]
    d = [np.asarray(x, dtype=float) for x in defective]
    n = len(c[0])
    if n == 0 or any(len(x) != n for x in (*c, *d)):
        raise ValueError("bad_output_ratio needs four equal-length, non-empty score lists")
    well = bad_output_rate(c[1], d[1])
    point = bad_output_rate(c[0], d[0]) / well if well > 0 else None
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    bad = [1.0 - c[k][idx].mean(1) * (1.0 - d[k][idx].mean(1)) for k in (0, 1)]
    ok = bad[1] > 0
    if not ok.any():
        return point, None, None
    low, high = np.percentile(bad[0][ok] / bad[1][ok], [2.5, 97.5])
    return point, float(low), float(high)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion (stays inside [0, 1] and is not [0, 0] for 0 of n)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(x_poor: int, n_poor: int, x_well: int, n_well: int) -> tuple[float, float, float]:
    """(p_poor - p_well, low, high): Newcombe's hybrid score interval for a difference of two proportions."""
    p1, p2 = x_poor / max(n_poor, 1), x_well / max(n_well, 1)
    l1, u1 = wilson(x_poor, n_poor)
    l2, u2 = wilson(x_well, n_well)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def exposure(canary_nll: float, candidate_nlls: Sequence[float]) -> float:
    """The Secret Sharer's exposure (Carlini et al. 2019), estimated from sampled candidates, in bits.

    exposure = log2(|R|) - log2(rank), with the canary ranked by log-perplexity among itself and the candidates
    (rank 1 = lowest). With |R| - 1 sampled candidates this is the sampling estimate, capped at log2(|R|).
    """
    rank = 1 + sum(1 for c in candidate_nlls if c < canary_nll)
    return math.log2(len(candidate_nlls) + 1) - math.log2(rank)


def steps_to_reach(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """The first (linearly interpolated) step at which an eval curve [(step, loss)] falls to `target`; None if never."""
    points = sorted(curve)
    if not points:
        return None
    if points[0][1] <= target:
        return float(points[0][0])
    for (s0, l0), (s1, l1) in zip(points, points[1:], strict=False):
        if l1 <= target:
            return float(s0 + (s1 - s0) * (l0 - target) / (l0 - l1)) if l0 != l1 else float(s1)
    return None


def compute_ratio(poor_curve: Sequence[tuple[float, float]], well_curve: Sequence[tuple[float, float]]
                  ) -> dict[str, Any]:
    """Training compute the poor data spends per unit the well-prepared data spends for the same held-out loss.

    Read from the eval curves (steps are compute: both arms have the same tokens per step). When the poor data
    ends worse, the target is its final loss and the ratio (budget / steps the well data needed) is a lower bound
    (`lower_bound`), since the poor data never reached the well data's final loss. When it ends better the ratio
    is below 1.
    """
    budget = float(max(s for s, _ in well_curve))
    well_final, poor_final = sorted(well_curve)[-1][1], sorted(poor_curve)[-1][1]
    if poor_final <= well_final:  # poor data reached the well model's final loss too: at which step?
        steps = steps_to_reach(poor_curve, well_final)
        return {"ratio": steps / budget if steps else None, "target_loss": well_final, "poor_steps": steps,
                "well_steps": budget, "lower_bound": False}
    steps = steps_to_reach(well_curve, poor_final)  # where the well data passed poor's final loss
    return {"ratio": budget / steps if steps else None, "target_loss": poor_final, "poor_steps": budget,
            "well_steps": steps, "lower_bound": True}
