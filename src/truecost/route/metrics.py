"""Routing metrics as pure functions over (cost or strong-call share, quality) points.

Two models (RouteLLM, Ong et al. 2024, arXiv 2406.18665):
- PGR(share) = (quality(share) - quality_weak) / (quality_strong - quality_weak): the part of the quality gap between
  the weak and strong model that a router recovers when `share` of calls go to the strong model.
- APGR = integral of PGR over share in [0, 1] (area under the PGR curve; a random router scores 0.5).
- CPT(x) = the smallest share of strong-model calls at which PGR reaches x (e.g. CPT(50%)).

Any number of models (RouterBench, Hu et al. 2024, arXiv 2403.12031):
- A router's frontier: the non-decreasing upper convex hull of its (mean cost, mean quality) points; any point on it
  is reachable by mixing two of the router's settings at random.
- AIQ = (1 / (c_max - c_min)) * integral of the frontier's quality over cost in [c_min, c_max].

Between points the curves are linear (which is what randomly mixing two settings achieves).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _curve(xs: Sequence[float], ys: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by x, with equal x merged (mean y)."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError("need two equal-length, non-empty 1-d sequences")
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
    return ux, uy


def pgr_curve(shares: Sequence[float], qualities: Sequence[float], quality_weak: float, quality_strong: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """(share, PGR) points over [0, 1]: the endpoints all-weak and all-strong are added when missing."""
    if quality_strong == quality_weak:
        raise ValueError("PGR is undefined when the strong and weak model have the same quality")
    x, y = _curve([0.0, *shares, 1.0], [quality_weak, *qualities, quality_strong])
    # The added endpoints must not blend with measured ones at the same share.
    measured = dict(zip(*_curve(shares, qualities), strict=True)) if len(shares) else {}
    y = np.array([measured.get(s, q) for s, q in zip(x, y, strict=True)])
    if x[0] < 0 or x[-1] > 1:
        raise ValueError("shares must lie in [0, 1]")
    return x, (y - quality_weak) / (quality_strong - quality_weak)


def apgr(shares: Sequence[float], qualities: Sequence[float], quality_weak: float, quality_strong: float) -> float:
    """Average performance gap recovered: the area under PGR(share) over [0, 1]."""
    x, pgr = pgr_curve(shares, qualities, quality_weak, quality_strong)
    return float(np.trapezoid(pgr, x))


def cpt(shares: Sequence[float], qualities: Sequence[float], quality_weak: float, quality_strong: float,
        target_pgr: float) -> float:
    """Call-performance threshold: the least share of strong calls whose PGR reaches `target_pgr`."""
    x, pgr = pgr_curve(shares, qualities, quality_weak, quality_strong)
    if pgr[0] >= target_pgr:
        return float(x[0])
    for i in range(1, len(x)):
        if pgr[i] >= target_pgr:
            # Linear between the two points: the crossing share.
            t = (target_pgr - pgr[i - 1]) / (pgr[i] - pgr[i - 1])
            return float(x[i - 1] + t * (x[i] - x[i - 1]))
    return 1.0


def frontier(costs: Sequence[float], qualities: Sequence[float]) -> list[tuple[float, float]]:
    """The non-decreasing upper convex hull of (cost, quality) points, from cheapest to dearest."""
    if len(costs) != len(qualities) or len(costs) == 0:
        raise ValueError("need equal-length, non-empty costs and qualities")
    # At one cost keep the best quality (a router can always pick its better setting).
    best: dict[float, float] = {}
    for c, q in zip(np.asarray(costs, float), np.asarray(qualities, float), strict=True):
        best[float(c)] = max(best.get(float(c), -np.inf), float(q))
    points = sorted(best.items())
    hull: list[tuple[float, float]] = []
    for c, q in points:
        if hull and q <= hull[-1][1]:
            continue  # costs more, no better: dominated
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or under the segment from c1 to the new point.
            if (q2 - q1) * (c - c1) <= (q - q1) * (c2 - c1):
                hull.pop()
            else:
                break
        hull.append((c, q))
    return hull


def quality_at_cost(hull: Sequence[tuple[float, float]], cost: float) -> float | None:
    """Frontier quality at `cost` (flat beyond the dearest point; None below the cheapest)."""
    if cost < hull[0][0]:
        return None
    if cost >= hull[-1][0]:
        return hull[-1][1]
    cs = [c for c, _ in hull]
    qs = [q for _, q in hull]
    return float(np.interp(cost, cs, qs))


def cost_at_quality(hull: Sequence[tuple[float, float]], quality: float) -> float | None:
    """The least cost on the frontier that reaches `quality`; None when the frontier never does."""
    if quality <= hull[0][1]:
        return hull[0][0]
    for (c1, q1), (c2, q2) in zip(hull, hull[1:], strict=False):
        if q2 >= quality:
            return float(c1 + (quality - q1) / (q2 - q1) * (c2 - c1))
    return None


def aiq(hull: Sequence[tuple[float, float]], cost_low: float, cost_high: float) -> float:
    """Average improvement in quality: the frontier's mean quality over [cost_low, cost_high].

    Below the router's cheapest point it reaches no quality (counted as 0); above its dearest it stays flat.
    """
    if cost_high <= cost_low:
        raise ValueError("AIQ needs cost_high > cost_low")
    grid = sorted({cost_low, cost_high, *(c for c, _ in hull if cost_low < c < cost_high)})
    # Integrate the piecewise-linear frontier exactly, segment by segment.
    area = 0.0
    for a, b in zip(grid, grid[1:], strict=False):
        qa, qb = quality_at_cost(hull, a), quality_at_cost(hull, b)
        if qa is None and qb is None:
            continue
        if qa is None:  # the frontier starts inside (a, b)
            start = hull[0][0]
            qs = quality_at_cost(hull, start) or 0.0
            area += (qs + (qb or 0.0)) / 2 * (b - start)
            continue
        area += (qa + (qb or 0.0)) / 2 * (b - a)
    return area / (cost_high - cost_low)


def cost_saving(hull: Sequence[tuple[float, float]], quality: float, reference_cost: float) -> float | None:
    """1 - (frontier cost to reach `quality`) / `reference_cost`; None when the frontier never reaches it."""
    cost = cost_at_quality(hull, quality)
    if cost is None or reference_cost <= 0:
        return None
    return 1.0 - cost / reference_cost
