"""Routing metrics against hand-computed values, and the knob sweep against a brute-force ranking."""

from __future__ import annotations

import numpy as np
import pytest

from truecost.route import metrics
from truecost.route.evaluate import score_points, sweep
from truecost.route.outcomes import OutcomeDataset
from truecost.route.routers import OracleRouter, ZeroRouter


def test_apgr_and_cpt_by_hand() -> None:
    # weak 0.5, strong 0.9; one setting reaches 0.8 with half the calls strong -> PGR 0, 0.75, 1 at shares 0, .5, 1.
    area = 0.5 * (0 + 0.75) / 2 + 0.5 * (0.75 + 1.0) / 2
    assert metrics.apgr([0.5], [0.8], 0.5, 0.9) == pytest.approx(area)
    assert metrics.cpt([0.5], [0.8], 0.5, 0.9, 0.5) == pytest.approx(0.5 * 0.5 / 0.75)
    assert metrics.cpt([0.5], [0.8], 0.5, 0.9, 0.8) == pytest.approx(0.5 + 0.5 * 0.05 / 0.25)
    # A router that only interpolates between the two models (random mixing): APGR 0.5 and CPT(x) = x.
    assert metrics.apgr([], [], 0.5, 0.9) == pytest.approx(0.5)
    assert metrics.cpt([0.3], [0.62], 0.5, 0.9, 0.8) == pytest.approx(0.8)


def test_pgr_can_exceed_one_and_measured_endpoints_win() -> None:
    # At share 0 a router can already beat the weak model (never happens for a pure weak call, but measured wins).
    x, pgr = metrics.pgr_curve([0.0, 0.5], [0.6, 1.0], 0.5, 0.9)
    assert list(x) == [0.0, 0.5, 1.0]
    assert pgr == pytest.approx([0.25, 1.25, 1.0])
    assert metrics.cpt([0.0, 0.5], [0.6, 1.0], 0.5, 0.9, 0.2) == 0.0


def test_frontier_keeps_the_non_decreasing_convex_hull() -> None:
    points = [(1, 0.5), (2, 0.6), (3, 0.9), (4, 0.85), (2.5, 0.55), (3, 0.7)]
    hull = metrics.frontier([c for c, _ in points], [q for _, q in points])
    # (2, .6) lies under the segment (1, .5)-(3, .9) (0.7 there); (4, .85) costs more for less.
    assert hull == [(1.0, 0.5), (3.0, 0.9)]


def test_aiq_cost_at_quality_and_saving_by_hand() -> None:
    hull = [(1.0, 0.5), (3.0, 0.9)]
    # Over [1, 4]: trapezoid 1..3 = (0.5 + 0.9) / 2 * 2 = 1.4, flat 3..4 = 0.9; mean = 2.3 / 3.
    assert metrics.aiq(hull, 1.0, 4.0) == pytest.approx(2.3 / 3)
    # A frontier that starts at cost 2 earns nothing on [1, 2].
    assert metrics.aiq([(2.0, 0.6), (3.0, 0.8)], 1.0, 3.0) == pytest.approx(0.7 / 2)
    assert metrics.cost_at_quality(hull, 0.7) == pytest.approx(2.0)
    assert metrics.cost_at_quality(hull, 0.4) == pytest.approx(1.0)
    assert metrics.cost_at_quality(hull, 0.95) is None
    assert metrics.cost_saving(hull, 0.7, 4.0) == pytest.approx(0.5)
    assert metrics.cost_saving(hull, 0.95, 4.0) is None
    assert metrics.quality_at_cost(hull, 0.5) is None


def _two_model_data(rng: np.random.Generator, n: int) -> OutcomeDataset:
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(n) < 0.5).astype(float))
    cost = np.tile([0.001, 0.01], (n, 1))
    return OutcomeDataset(ids=[str(i) for i in range(n)], prompts=[f"q{i}" for i in range(n)],
                          models=["weak", "strong"], quality=np.stack([weak, strong], 1), cost_usd=cost)


def test_sweep_matches_brute_force_ranking() -> None:
    """APGR from the knob sweep equals the area under PGR when the k best-scored queries go strong, k = 0..n."""
    rng = np.random.default_rng(3)
    data = _two_model_data(rng, 60)
    router = ZeroRouter().fit(data)
    scores = rng.random(60)  # a router with distinct scores: predicted strong - weak gap
    router._predict = lambda prompts, features: np.stack(  # type: ignore[method-assign]
        [np.zeros(len(prompts)), np.array([scores[int(p[1:])] for p in prompts])], 1)
    result = score_points(sweep(router, data), data, "strong")
    order = np.argsort(-scores)
    qualities = [(data.quality[order[:k], 1].sum() + data.quality[order[k:], 0].sum()) / 60 for k in range(61)]
    q_weak, q_strong = data.quality.mean(0)
    pgr = (np.array(qualities) - q_weak) / (q_strong - q_weak)
    assert result["apgr"] == pytest.approx(np.trapezoid(pgr, np.arange(61) / 60))
    first = int(np.argmax(pgr >= 0.5))
    assert (first - 1) / 60 <= result["cpt_50"] <= first / 60


def test_zero_router_is_the_chance_line_and_oracle_is_perfect() -> None:
    data = _two_model_data(np.random.default_rng(5), 200)
    zero = score_points(sweep(ZeroRouter().fit(data), data), data, "strong")
    assert zero["apgr"] == pytest.approx(0.5)
    assert zero["cpt_50"] == pytest.approx(0.5)
    oracle = score_points(sweep(OracleRouter().fit(data), data), data, "strong")
    # The oracle sends strong only where strong is right and weak wrong: that share recovers the whole gap.
    gap_share = float(np.mean((data.quality[:, 1] == 1) & (data.quality[:, 0] == 0)))
    assert oracle["cpt_50"] == pytest.approx(gap_share / 2, abs=1e-9)
    assert oracle["cost_saving_at_best_single_quality"] == pytest.approx(
        1 - (0.001 + 0.009 * gap_share) / 0.01)
