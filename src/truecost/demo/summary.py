"""The demo's `effects`: each measured difference between the poor and the well-prepared model with its 95%
interval and what the interval is over (held-out items here: one seed of the real model). Pure over the measured
per-item numbers.

The issue's bar is an interval over at least 3 seeds or at least 100 held-out items; `meets_bar` says whether an
effect meets it (the exposure test ranks only the planted canaries, fewer than 100 at the default scale).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from truecost.demo.arms import ArmResult, pooled_loss
from truecost.demo.scan import DEFECT_KINDS
from truecost.demo.stats import (
    Effect,
    bad_output_rate,
    bad_output_ratio,
    compute_ratio,
    newcombe_difference,
    paired_bootstrap,
)

MIN_ITEMS, MIN_SEEDS = 100, 3


def loss_effect(arms: dict[str, ArmResult], model: str, seed: int) -> Effect:
    """Held-out loss on clean text (nats/token), token-weighted; paired bootstrap over documents."""
    poor, well = arms["poor"].final, arms["well"].final
    diff, low, high = paired_bootstrap([d.per_token for d in poor], [d.per_token for d in well],
                                       weights=[d.tokens for d in poor], seed=seed)
    return Effect(pooled_loss(poor), pooled_loss(well), low, high, 1, len(poor), model, "items", "nats/token")


def ratio_effect(arms: dict[str, ArmResult], model: str, seed: int, resamples: int = 500) -> tuple[Effect, dict]:
    """Compute ratio to the same held-out loss from the eval curves; bootstrap over the curve's documents."""
    poor, well = arms["poor"], arms["well"]
    steps = [s for s, _ in poor.curve]
    n = len(poor.curve_losses[0])

    def curves(rows: np.ndarray) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        def one(arm: ArmResult) -> list[tuple[float, float]]:
            return [(float(s), pooled_loss([losses[i] for i in rows])) for s, losses in zip(steps, arm.curve_losses,
                                                                                            strict=True)]
        return one(poor), one(well)

    point = compute_ratio(*curves(np.arange(n)))
    rng = np.random.default_rng(seed)
    draws = [compute_ratio(*curves(rng.integers(0, n, n)))["ratio"] for _ in range(resamples)]
    finite = [d for d in draws if d is not None]
    low, high = (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))) if finite else (None, None)
    ratio = point["ratio"]
    effect = Effect(ratio if ratio is not None else float("nan"), 1.0, low, high, 1, n, model, "items",
                    "x the well-prepared data's training compute")
    return effect, point


def rate_effect(flags: dict[str, list[dict[str, bool]]], kind: str, model: str) -> Effect:
    """Share of generations showing a defect kind ("any": at least one), with Newcombe's interval of the difference:
    a bootstrap over prompts collapses to [0, 0] when neither model shows the defect, which says nothing."""
    def count(arm: str) -> int:
        return sum(bool(any(f.values()) if kind == "any" else f[kind]) for f in flags[arm])

    n_poor, n_well = len(flags["poor"]), len(flags["well"])
    x_poor, x_well = count("poor"), count("well")
    _, low, high = newcombe_difference(x_poor, n_poor, x_well, n_well)
    return Effect(x_poor / max(n_poor, 1), x_well / max(n_well, 1), low, high, 1, n_poor, model, "items", "share")


def effects(measured: dict[str, Any], arms: dict[str, ArmResult], model: str, seed: int) -> dict[str, Any]:
    """Every effect as a dict: loss, compute ratio, defect rates, exposure, task accuracy, routing saving."""
    out: dict[str, Any] = {"heldout_loss": loss_effect(arms, model, seed).to_dict()}
    ratio, detail = ratio_effect(arms, model, seed)
    out["compute_ratio_same_loss"] = {**ratio.to_dict(), **{k: v for k, v in detail.items() if k != "ratio"}}
    flags = measured["_flags"]
    for kind in (*DEFECT_KINDS, "any"):
        out[f"generation_{kind}_rate"] = {**rate_effect(flags, kind, model).to_dict(),
                                          "note": "ci_low/ci_high: 95% interval of poor minus well (Newcombe's "
                                                  "hybrid score, as for two independent samples)"}
    poor_x, well_x = (measured["defects"][a]["exposure_bits"] for a in ("poor", "well"))
    if poor_x:
        _, low, high = paired_bootstrap(poor_x, well_x, seed=seed)
        out["canary_exposure_bits"] = {
            **Effect(float(np.mean(poor_x)), float(np.mean(well_x)), low, high, 1, len(poor_x), model,
                     "items (planted canaries)", "bits").to_dict(),
            "note": "ci_low/ci_high: 95% interval of poor minus well over the planted canaries; fewer than 100 "
                    "items, and most canaries were not in the fraction of the poor data the budget trained on"}
    reviews = measured["review"]
    correct = {a: reviews[a]["correct"] for a in ("poor", "well")}
    if correct["poor"] and len(correct["poor"]) == len(correct["well"]):
        _, low, high = paired_bootstrap(correct["poor"], correct["well"], seed=seed)
        out["review_accuracy"] = Effect(reviews["poor"]["accuracy"], reviews["well"]["accuracy"], low, high, 1,
                                        len(correct["poor"]), model, "items", "share").to_dict()
        out.update(_bad_output(correct, flags, model, seed))
    routing = measured.get("routing")
    if routing:
        out["routing_saving_at_strong_quality"] = {
            "poor": 0.0, "well": routing["saving"], "ci_low": routing["ci_low"], "ci_high": routing["ci_high"],
            "n_seeds": 1, "n_items": routing["n_prompts"], "model": " vs ".join(routing["models"]),
            "interval_over": "items", "unit": "share of the strong model's serving cost",
            "note": "poor: every request to the strong model (the baseline); interval of the saving itself"}
    for effect in out.values():
        effect["meets_bar"] = effect["n_items"] >= MIN_ITEMS or effect["n_seeds"] >= MIN_SEEDS
        effect.setdefault("note", "ci_low/ci_high: 95% interval of poor minus well" if effect.get("unit") !=
                          "x the well-prepared data's training compute" else "ci_low/ci_high: 95% interval of the "
                          "ratio itself")
    return out


def _bad_output(correct: dict[str, list[float]], flags: dict[str, list[dict[str, bool]]], model: str,
                seed: int) -> dict[str, Any]:
    """The ratio the TCO carries to the plan: bad-output rate (1 - accuracy x (1 - any-defect rate)) of the poor
    model over the well one's, paired over the items both the review and the generation scan used."""
    defective = {a: [float(any(f.values())) for f in flags[a]] for a in ("poor", "well")}
    if any(len(correct[a]) != len(defective[a]) for a in ("poor", "well")):
        return {}
    ratio, low, high = bad_output_ratio((correct["poor"], correct["well"]), (defective["poor"], defective["well"]),
                                        seed=seed)
    rates = {a: bad_output_rate(np.asarray(correct[a]), np.asarray(defective[a])) for a in ("poor", "well")}
    return {"bad_output_ratio": {
        "poor": ratio, "well": 1.0, "ci_low": low, "ci_high": high,
        "n_seeds": 1, "n_items": len(defective["poor"]), "model": model, "interval_over": "items",
        "unit": "x the well-prepared model's bad-output rate", "bad_output_rate": rates,
        "note": "ci_low/ci_high: 95% paired bootstrap interval of the ratio itself; the TCO carries this ratio to "
                "the plan's base rate (its own interval there is Katz's, from the same counts)"}}
