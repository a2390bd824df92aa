"""Fitting and scoring routers as recorded runs: what `truecost route fit|eval` do, callable from Python.

With a `ledger`, each call is one run there (kind "route", under `parent_id` when given), metered like every part;
without one nothing is recorded. `config` prices the metered compute (None: the defaults).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from truecost.config import Config
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.ledger import Ledger
    from truecost.route.base import Router
    from truecost.route.outcomes import OutcomeDataset


@dataclass(frozen=True)
class FittedRouter:
    """A fitted router and the ledger run that recorded its fitting (None without a ledger)."""

    router: Router
    run_id: str | None


def fit_router(kind: str, data: OutcomeDataset, *, embedder: str = "auto", seed: int = 0,
               out: str | Path | None = None, ledger: Ledger | None = None, parent_id: str | None = None,
               config: Config | None = None, params: Mapping[str, Any] | None = None) -> FittedRouter:
    """Fit a router of `kind` (knn, mf, classifier, cascade) on `data` and save it to `out` when given.

    The ledger run is named `fit KIND`; its `params` are the kind, embedder and seed, plus `params` given here
    (say where the data came from); its `results` are `queries`, `models`, `out` and `embedder` (what embedded:
    `minilm-int8`, `minilm-static` or `tfidf`).
    """
    from truecost.route.base import router_class
    from truecost.route.routers import LEARNED_ROUTERS

    if kind not in LEARNED_ROUTERS:
        raise UserError(f"unknown router {kind!r}; choose one of {', '.join(LEARNED_ROUTERS)}")

    def fit() -> Router:
        fitted = router_class(kind)(embedder=embedder, seed=seed).fit(data)
        if out is not None:
            fitted.save(out)
        return fitted

    if ledger is None:
        return FittedRouter(fit(), None)
    cfg = config if config is not None else Config()
    recorded = {"router": kind, "embedder": embedder, "seed": seed, **(params or {})}
    with ledger.run("route", f"fit {kind}", params=recorded, prices=cfg.compute_prices(),
                    parent_id=parent_id) as run:
        fitted = fit()
        run.results.update({"queries": len(data), "models": data.models, "out": str(out or ""),
                            "embedder": fitted.embedder_name})
    return FittedRouter(fitted, run.id)


def evaluate_routers(data: OutcomeDataset, *, routers: Mapping[str, Router] | None = None,
                     makers: Mapping[str, Callable[[], Router]] | None = None, folds: int = 5, seed: int = 0,
                     ledger: Ledger | None = None, parent_id: str | None = None, config: Config | None = None,
                     params: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Score fitted `routers` on `data` held out ({"held_out": scores}), or cross-validate router `makers` on
    random folds and on held-out groups ({"random": scores, "groups": scores}); scores as `evaluate` gives them.

    The ledger run is named `eval`; its `results` are `ledger_scores(...)` (the TCO reads each learned router's
    `cost_saving_at_best_single_quality` there: see `truecost.estimate.tco_ledger`).
    """
    from truecost.route.evaluate import evaluate, evaluate_cv

    if bool(routers) == bool(makers):
        raise UserError("give either fitted routers or router makers to cross-validate")

    def score() -> dict[str, dict[str, Any]]:
        if routers:
            return {"held_out": evaluate(routers, data, seed=seed)}
        assert makers is not None
        return {scheme: evaluate_cv(makers, data, scheme, folds, seed) for scheme in ("random", "groups")}

    if ledger is None:
        return score()
    cfg = config if config is not None else Config()
    recorded = {"routers": list(routers or makers or {}), "folds": None if routers else folds, **(params or {})}
    with ledger.run("route", "eval", params=recorded, prices=cfg.compute_prices(), parent_id=parent_id) as run:
        results = score()
        run.results.update(ledger_scores(results))
    return results


def ledger_scores(results: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The scores recorded on the ledger run (frontiers left out): per router for a held-out file, or per split
    and router for cross-validation."""
    def strip(one: dict[str, Any]) -> dict[str, Any]:
        return {name: {k: v for k, v in s.items() if k != "frontier"} for name, s in one["routers"].items()}

    if set(results) == {"held_out"}:
        return strip(results["held_out"])
    return {scheme: strip(one) for scheme, one in results.items()}
