"""Route between two real models on the demo's held-out prompts, quality measured per prompt.

Task: continue a held-out docstring. A prompt's quality on a model is the geometric-mean probability per UTF-8 byte
the model gives the reference text (exp(-nats per byte)): per byte, so models with different tokenizers compare.
Cost is each model's measured CPU time for the prompt, priced by truecost.estimate. A kNN router (truecost.route)
is cross-fitted on two halves, so every prompt is routed by a router that never saw it; the saving at the strong
model's quality has a 95% bootstrap interval over prompts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from truecost.demo.measure import DocLoss

THRESHOLDS = np.concatenate([[-np.inf], np.linspace(-0.2, 0.2, 161), [np.inf]])


def policy_points(gap_pred: np.ndarray, quality: np.ndarray, cost: np.ndarray, rows: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(mean cost, mean quality) over `rows` of "use the strong model (column 1) when the predicted gain exceeds t",
    for every threshold t."""
    strong = gap_pred[rows][None, :] > THRESHOLDS[:, None]
    q = np.where(strong, quality[rows, 1], quality[rows, 0]).mean(1)
    c = np.where(strong, cost[rows, 1], cost[rows, 0]).mean(1)
    return c, q


def saving_at_strong_quality(gap_pred: np.ndarray, quality: np.ndarray, cost: np.ndarray, rows: np.ndarray
                             ) -> float | None:
    """Share of the strong model's cost the router saves while matching its mean quality (route.metrics' frontier);
    None when the frontier never reaches it. Column 1 is the strong (dearer) model."""
    from truecost.route import metrics

    c, q = policy_points(gap_pred, quality, cost, rows)
    hull = metrics.frontier(list(c), list(q))
    return metrics.cost_saving(hull, float(quality[rows, 1].mean()), float(cost[rows, 1].mean()))


def bootstrap_saving(gap_pred: np.ndarray, quality: np.ndarray, cost: np.ndarray, resamples: int = 500,
                     seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """(saving, low, high): the saving on all prompts and its 95% percentile interval over resampled prompts (a
    resample whose frontier never reaches the strong quality counts as no saving)."""
    n = len(gap_pred)
    point = saving_at_strong_quality(gap_pred, quality, cost, np.arange(n))
    rng = np.random.default_rng(seed)
    draws = [saving_at_strong_quality(gap_pred, quality, cost, rng.integers(0, n, n)) for _ in range(resamples)]
    values = [d if d is not None else 0.0 for d in draws]
    low, high = np.percentile(values, [2.5, 97.5])
    return point, float(low), float(high)


def outcomes(prompts: Sequence[str], losses: dict[str, list[DocLoss]], prices: Any) -> dict[str, Any]:
    """Per-prompt quality and priced CPU cost of each model (in the order of `losses`: weak first, strong second)."""
    from truecost.estimate import compute_cost_usd

    names = list(losses)
    quality = np.array([[math.exp(-losses[m][i].per_byte) for m in names] for i in range(len(prompts))])
    cost = np.array([[compute_cost_usd(losses[m][i].cpu_seconds, 0.0, prices) for m in names]
                     for i in range(len(prompts))])
    return {"models": names, "quality": quality, "cost": cost}


def cross_fitted_gap(prompts: Sequence[str], models: list[str], quality: np.ndarray, cost: np.ndarray,
                     seed: int) -> np.ndarray:
    """Predicted quality gain of the strong model per prompt, each from a kNN router fitted on the other half."""
    from truecost.route.outcomes import OutcomeDataset
    from truecost.route.routers import KNNRouter

    order = list(range(len(prompts)))
    random.Random(seed).shuffle(order)
    halves = [sorted(order[: len(order) // 2]), sorted(order[len(order) // 2:])]
    gap = np.zeros(len(prompts))
    for fit_rows, test_rows in (halves, halves[::-1]):
        data = OutcomeDataset(ids=[str(i) for i in fit_rows], prompts=[prompts[i] for i in fit_rows], models=models,
                              quality=quality[fit_rows], cost_usd=cost[fit_rows])
        router = KNNRouter().fit(data)
        predicted = np.asarray(router.predict_quality([prompts[i] for i in test_rows]))
        columns = [router.models.index(m) for m in models]
        gap[test_rows] = predicted[:, columns[1]] - predicted[:, columns[0]]
    return gap


def route_models(ctx: Any, prompts: Sequence[str], losses: dict[str, list[DocLoss]]) -> dict[str, Any]:
    """Fit and evaluate the cross-fitted router in one `route` ledger run; the saving with its interval."""
    data = outcomes(prompts, losses, ctx.config.compute_prices())
    models, quality, cost = data["models"], data["quality"], data["cost"]
    with ctx.ledger.run("route", "demo: route between a small and a larger real model", parent_id=ctx.demo_run_id,
                        params={"models": models, "prompts": len(prompts)},
                        prices=ctx.config.compute_prices()) as meter:
        gap = cross_fitted_gap(prompts, models, quality, cost, ctx.seed)
        saving, low, high = bootstrap_saving(gap, quality, cost, seed=ctx.seed)
        oracle, o_low, o_high = bootstrap_saving(quality[:, 1] - quality[:, 0], quality, cost, seed=ctx.seed)
        meter.results.update({"knn": {"cost_saving_at_best_single_quality": saving, "ci_low": low, "ci_high": high},
                              "oracle": {"cost_saving_at_best_single_quality": oracle},
                              "n_queries": len(prompts), "interval": "95% bootstrap over prompts"})
    c, q = policy_points(gap, quality, cost, np.arange(len(prompts)))
    means = {m: {"quality": float(quality[:, j].mean()), "cost_usd": float(cost[:, j].mean())}
             for j, m in enumerate(models)}
    return {"run_id": meter.id, "models": means,
            "n_prompts": len(prompts), "saving": saving, "ci_low": low, "ci_high": high,
            "oracle_saving": oracle, "oracle_ci": [o_low, o_high],
            "strong_better_share": float((quality[:, 1] > quality[:, 0]).mean()),
            "frontier": [[float(a), float(b)] for a, b in zip(c, q, strict=True)]}
