"""Evaluate routers on held-out outcomes: sweep the knob, then score the cost/quality curve (see `metrics`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from truecost.errors import UserError
from truecost.route import metrics
from truecost.route.base import Router, choose, router_class
from truecost.route.outcomes import OutcomeDataset

# Knob values swept for every router: 0 (best quality), a geometric grid, and "cheapest always".
KNOB_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 121), [1e12]])
BASELINES = ("random", "zero", "oracle")


@dataclass(frozen=True)
class PolicyPoint:
    """What one knob setting did on the data: mean dollars and quality per query, share of strong calls."""

    knob: float
    cost_usd: float
    quality: float
    strong_share: float


def _two_model_break_evens(gap_quality: np.ndarray, gap_cost: float) -> np.ndarray:
    """Knob values where some prompt switches model (both sides of each), so the sweep misses no step."""
    edges = np.unique(gap_quality / max(gap_cost, 1e-12))
    return np.concatenate([edges, edges - 1e-9])


def sweep(router: Router, data: OutcomeDataset, knobs: np.ndarray | None = None) -> list[PolicyPoint]:
    """Route every query of `data` at each knob and measure the true outcome (data columns follow router.models)."""
    q_pred = router.predict_quality(data.prompts)
    c_pred = np.asarray(router.expected_cost_usd(data.prompts))
    scale = router.cost_scale_usd_
    strong = data.models.index(router.strong_model)
    rows = np.arange(len(data))
    cascade = _cascade_inputs(router, data)
    if knobs is None:
        knobs = KNOB_GRID
        if len(data.models) == 2:
            weak = 1 - strong
            gap_cost = (c_pred[0, strong] - c_pred[0, weak]) / scale
            gap = (q_pred[:, strong] - (cascade[1] if cascade is not None else q_pred[:, weak]))
            knobs = np.concatenate([knobs, _two_model_break_evens(gap, gap_cost)])
    points = []
    for knob in knobs:
        if cascade is None:
            chosen = choose(q_pred, c_pred, float(knob), scale)
            cost = data.cost_usd[rows, chosen]
            quality = data.quality[rows, chosen]
        else:
            cheap, accept_quality = cascade
            others = np.ones(len(data.models), bool)
            others[cheap] = False
            chosen = choose(np.where(others, q_pred, -np.inf), c_pred, float(knob), scale)
            best_other = q_pred[rows, chosen] - knob * c_pred[rows, chosen] / scale
            escalate = accept_quality < best_other
            cost = data.cost_usd[:, cheap] + np.where(escalate, data.cost_usd[rows, chosen], 0.0)
            quality = np.where(escalate, data.quality[rows, chosen], data.quality[:, cheap])
            chosen = np.where(escalate, chosen, cheap)
        points.append(PolicyPoint(float(knob), float(cost.mean()), float(quality.mean()),
                                  float(np.mean(chosen == strong))))
    return points


def _cascade_inputs(router: Router, data: OutcomeDataset) -> tuple[int, np.ndarray] | None:
    """For a cascade with a checker and cheap answers in the data: (cheap column, checker's accept probability)."""
    if not getattr(router, "has_checker_", False):
        return None
    cheap_model = router.cheap_model_  # type: ignore[attr-defined]
    answers = data.responses.get(cheap_model)
    if answers is None or any(a is None for a in answers):
        return None
    accept = router.check(data.prompts, [a or "" for a in answers])  # type: ignore[attr-defined]
    return data.models.index(cheap_model), accept


def score_points(points: list[PolicyPoint], data: OutcomeDataset, strong_model: str) -> dict[str, Any]:
    """The metrics of one router's swept points on `data`."""
    mean_quality = data.quality.mean(axis=0)
    mean_cost = data.cost_usd.mean(axis=0)
    hull = metrics.frontier([p.cost_usd for p in points], [p.quality for p in points])
    best = _best_single(data)
    result: dict[str, Any] = {"apgr": None, "cpt_50": None, "cpt_80": None}
    if len(data.models) == 2:
        strong = data.models.index(strong_model)
        q_weak, q_strong = float(mean_quality[1 - strong]), float(mean_quality[strong])
        if q_weak != q_strong:
            shares = [p.strong_share for p in points]
            qualities = [p.quality for p in points]
            result["apgr"] = metrics.apgr(shares, qualities, q_weak, q_strong)
            result["cpt_50"] = metrics.cpt(shares, qualities, q_weak, q_strong, 0.5)
            result["cpt_80"] = metrics.cpt(shares, qualities, q_weak, q_strong, 0.8)
    low, high = float(mean_cost.min()), float(mean_cost.max())
    result["aiq"] = metrics.aiq(hull, low, high) if high > low else None
    reference_quality, reference_cost = float(mean_quality[best]), float(mean_cost[best])
    result["cost_saving_at_best_single_quality"] = metrics.cost_saving(hull, reference_quality, reference_cost)
    result["cost_saving_at_98pct_best_single_quality"] = metrics.cost_saving(hull, 0.98 * reference_quality,
                                                                             reference_cost)
    result["max_quality"] = max(q for _, q in hull)
    result["frontier"] = [[c, q] for c, q in hull]
    return result


def _best_single(data: OutcomeDataset) -> int:
    """Index of the model with the best mean quality (the cheaper one on a tie)."""
    quality = data.quality.mean(axis=0)
    cost = data.cost_usd.mean(axis=0)
    return int(np.lexsort((cost, -quality))[0])


def baselines(data: OutcomeDataset, seed: int = 0) -> dict[str, Router]:
    """Random, zero and oracle routers for `data` (they need no training set: zero and oracle read `data`)."""
    return {name: router_class(name)(seed=seed).fit(data) for name in BASELINES}


def evaluate(routers: Mapping[str, Router], data: OutcomeDataset, seed: int = 0) -> dict[str, Any]:
    """The `truecost route eval --json` document: every router plus the random, zero and oracle baselines."""
    if not routers:
        raise UserError("nothing to evaluate: give at least one router")
    models = next(iter(routers.values())).models
    for name, router in routers.items():
        if sorted(router.models) != sorted(models):
            raise UserError(f"router {name!r} chooses between {router.models}, not {models}")
    data = data.select_models(models)
    strong_model = next(iter(routers.values())).strong_model
    all_routers = {**baselines(data, seed), **routers}
    best = _best_single(data)
    result: dict[str, Any] = {
        "n_queries": len(data), "models": {
            m: {"quality": float(data.quality[:, j].mean()), "cost_usd": float(data.cost_usd[:, j].mean())}
            for j, m in enumerate(data.models)},
        "best_single_model": data.models[best], "strong_model": strong_model if len(models) == 2 else None,
        "routers": {}}
    for name, router in all_routers.items():
        result["routers"][name] = score_points(sweep(router, data), data, strong_model)
    return result


def plot_frontiers(result: dict[str, Any], path: str | Path, title: str = "Routing frontier") -> Path:
    """Write the routers' cost/quality frontiers and the single models as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, scores in result["routers"].items():
        points = np.array(scores["frontier"])
        style = "--" if name in BASELINES else "-"
        ax.plot(points[:, 0], points[:, 1], style, marker=".", label=name)
    for model, stats in result["models"].items():
        ax.scatter([stats["cost_usd"]], [stats["quality"]], marker="x", color="black")
        ax.annotate(model.split("/")[-1], (stats["cost_usd"], stats["quality"]), fontsize=7)
    ax.set_xlabel("mean cost per query (USD)")
    ax.set_ylabel("mean quality")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
