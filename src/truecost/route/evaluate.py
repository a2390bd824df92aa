"""Evaluate routers on held-out outcomes: sweep the knob, then score the cost/quality curve (see `metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from truecost.errors import UserError
from truecost.route import metrics
from truecost.route.base import Router, choose, router_class
from truecost.route.outcomes import OutcomeDataset
from truecost.route.routers import BASELINE_ROUTERS, CascadeRouter, GatedRouter, close_calls

# Knob values swept for every router: 0 (best quality), a geometric grid, and "cheapest always".
KNOB_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 121), [1e12]])
BASELINES = BASELINE_ROUTERS


@dataclass(frozen=True)
class PolicyPoint:
    """What one knob setting did on the data: mean dollars and quality per query, share of strong calls."""

    knob: float
    cost_usd: float
    quality: float
    strong_share: float


@dataclass(frozen=True)
class Predictions:
    """What a router expects for each query: quality, and cost in units of its own cost scale (so the knob means
    the same for predictions pooled from routers fitted on different folds)."""

    quality: np.ndarray
    scaled_cost: np.ndarray
    accept: np.ndarray | None = None  # a cascade's checker: P(cheap answer is good), per query
    cheap: int | None = None  # the cascade's cheap column
    # A gated router: `quality` is its fast classifier's, `accurate` the one its close calls (within `band`) get.
    accurate: np.ndarray | None = None
    band: float = 0.0

    def rows(self, rows: np.ndarray) -> Predictions:
        """These predictions for the given queries only."""
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        return replace(self, quality=self.quality[rows], scaled_cost=self.scaled_cost[rows],
                       accept=pick(self.accept), accurate=pick(self.accurate))

    def quality_at(self, knob: float) -> np.ndarray:
        """The quality a decision at `knob` reads: a gated router's close calls take the accurate estimate."""
        if self.accurate is None:
            return self.quality
        unsure = close_calls(self.quality, self.scaled_cost, knob, self.band)
        return np.where(unsure[:, None], self.accurate, self.quality)


def predictions(router: Router, data: OutcomeDataset) -> Predictions:
    """The router's predictions for every query of `data` (data columns follow router.models)."""
    quality = router.predict_quality(data.prompts)
    scaled_cost = np.asarray(router.expected_cost_usd(data.prompts)) / router.cost_scale_usd_
    if isinstance(router, GatedRouter):
        return Predictions(router.fast_quality(data.prompts), scaled_cost, accurate=quality, band=router.band)
    cascade = _cascade_inputs(router, data)
    if cascade is None:
        return Predictions(quality, scaled_cost)
    return Predictions(quality, scaled_cost, accept=cascade[1], cheap=cascade[0])


def _two_model_break_evens(pred: Predictions, strong: int) -> np.ndarray:
    """Knob values where some prompt switches model (both sides of each), so the sweep misses no step."""
    weak = 1 - strong
    gap_cost = np.maximum(pred.scaled_cost[:, strong] - pred.scaled_cost[:, weak], 1e-12)
    weak_quality = pred.accept if pred.accept is not None else pred.quality[:, weak]
    gap = pred.quality[:, strong] - weak_quality
    edges = [gap]
    if pred.accurate is not None:  # a gated router also switches where a close call opens or closes
        edges += [pred.accurate[:, strong] - pred.accurate[:, weak], gap - pred.band, gap + pred.band]
    unique = np.unique(np.concatenate([e / gap_cost for e in edges]))
    unique = unique[np.isfinite(unique)]  # an infinite band (every call accurate) opens no switch point
    return np.concatenate([unique, unique - 1e-9])


def sweep(router: Router, data: OutcomeDataset, knobs: np.ndarray | None = None) -> list[PolicyPoint]:
    """Route every query of `data` at each knob and measure the true outcome (data columns follow router.models)."""
    return sweep_predictions(predictions(router, data), data, data.models.index(router.strong_model), knobs)


def sweep_predictions(pred: Predictions, data: OutcomeDataset, strong: int, knobs: np.ndarray | None = None
                      ) -> list[PolicyPoint]:
    """The policy points of `pred` on `data` at each knob (default: the grid, plus every two-model switch point)."""
    if knobs is None:
        knobs = KNOB_GRID
        if len(data.models) == 2:
            knobs = np.concatenate([knobs, _two_model_break_evens(pred, strong)])
    rows = np.arange(len(data))
    points = []
    for knob in knobs:
        if pred.accept is None or pred.cheap is None:
            chosen = choose(pred.quality_at(float(knob)), pred.scaled_cost, float(knob), 1.0)
            cost, quality = data.cost_usd[rows, chosen], data.quality[rows, chosen]
        else:
            chosen, cost, quality = _cascade_policy(pred, data, float(knob))
        points.append(PolicyPoint(float(knob), float(cost.mean()), float(quality.mean()),
                                  float(np.mean(chosen == strong))))
    return points


def _cascade_policy(pred: Predictions, data: OutcomeDataset, knob: float) -> tuple[np.ndarray, ...]:
    """Cheap model first; escalate where the checker's accept probability is below the best other model's utility."""
    assert pred.accept is not None and pred.cheap is not None
    rows, cheap = np.arange(len(data)), pred.cheap
    others = np.ones(len(data.models), bool)
    others[cheap] = False
    chosen = choose(np.where(others, pred.quality, -np.inf), pred.scaled_cost, knob, 1.0)
    best_other = pred.quality[rows, chosen] - knob * pred.scaled_cost[rows, chosen]
    escalate = pred.accept < best_other
    cost = data.cost_usd[:, cheap] + np.where(escalate, data.cost_usd[rows, chosen], 0.0)
    quality = np.where(escalate, data.quality[rows, chosen], data.quality[:, cheap])
    return np.where(escalate, chosen, cheap), cost, quality


def _cascade_inputs(router: Router, data: OutcomeDataset) -> tuple[int, np.ndarray] | None:
    """For a cascade with a checker and cheap answers in the data: (cheap column, checker's accept probability)."""
    if not isinstance(router, CascadeRouter) or not router.has_checker_:
        return None
    answers = data.responses.get(router.cheap_model_)
    if answers is None or any(a is None for a in answers):
        return None
    return data.models.index(router.cheap_model_), router.check(data.prompts, [a or "" for a in answers])


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


def _document(data: OutcomeDataset, scored: OutcomeDataset, strong_model: str | None) -> dict[str, Any]:
    """The head of an evaluation document: the data, the single models and what was left out for gaps."""
    best = _best_single(scored)
    return {"n_queries": len(scored), "n_queries_missing_outcomes": len(data) - len(scored),
            "missing_by_model": data.missing_by_model(),
            "models": {m: {"quality": float(scored.quality[:, j].mean()),
                           "cost_usd": float(scored.cost_usd[:, j].mean())} for j, m in enumerate(scored.models)},
            "best_single_model": scored.models[best], "strong_model": strong_model, "routers": {}}


def _scored_part(data: OutcomeDataset) -> OutcomeDataset:
    """The queries a choice can be scored on: those with every outcome known."""
    scored = data.complete()
    if len(scored) == 0:
        raise UserError(f"no query has an outcome for every model ({', '.join(data.models)}); choose fewer models")
    return scored


def evaluate(routers: Mapping[str, Router], data: OutcomeDataset, seed: int = 0) -> dict[str, Any]:
    """The `truecost route eval --json` document: every router plus the random, zero and oracle baselines.

    Queries with a missing outcome are left out of the scores (what the router chose there cannot be scored) and
    counted in `n_queries_missing_outcomes`.
    """
    if not routers:
        raise UserError("nothing to evaluate: give at least one router")
    models = next(iter(routers.values())).models
    for name, router in routers.items():
        if sorted(router.models) != sorted(models):
            raise UserError(f"router {name!r} chooses between {router.models}, not {models}")
    data = data.select_models(models)
    scored = _scored_part(data)
    strong_model = next(iter(routers.values())).strong_model
    result = _document(data, scored, strong_model if len(models) == 2 else None)
    for name, router in {**baselines(scored, seed), **routers}.items():
        result["routers"][name] = score_points(sweep(router, scored), scored, strong_model)
    return result


# ---- cross-validation: random folds vs held-out groups ------------------------------------------------------------
SCHEMES = ("random", "groups")


def cv_folds(data: OutcomeDataset, scheme: str, folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Test rows of each fold: `random` keeps copies of one prompt together; `groups` holds out whole groups
    (MMLU subjects, RouterBench tasks), so every score is on groups the router never saw."""
    from sklearn.model_selection import GroupKFold

    if scheme not in SCHEMES:
        raise UserError(f"unknown split {scheme!r}; choose one of {', '.join(SCHEMES)}")
    labels = data.prompts if scheme == "random" else data.group_labels()
    distinct = len(set(labels))
    if distinct < 2:
        raise UserError(f"a {scheme} split needs at least 2 {'prompts' if scheme == 'random' else 'groups'}, "
                        f"found {distinct} (give each query a \"group\" in the outcomes file)")
    splitter = GroupKFold(n_splits=min(folds, distinct), shuffle=True, random_state=seed)
    return [np.sort(test) for _, test in splitter.split(np.zeros((len(data), 1)), groups=labels)]


def cross_val_predictions(make: Callable[[], Router], data: OutcomeDataset, folds: list[np.ndarray]
                          ) -> Predictions:
    """Each query predicted by a router fitted on the other folds (pooled, in `data` order)."""
    n, m = len(data), len(data.models)
    quality, scaled_cost, accurate = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    accept: np.ndarray | None = np.empty(n)
    cheap: set[int | None] = set()
    bands: set[float | None] = set()
    for test in folds:
        router = make().fit(data.subset(np.setdiff1d(np.arange(n), test)))
        part = predictions(router, data.subset(test))
        quality[test], scaled_cost[test] = part.quality, part.scaled_cost
        cheap.add(part.cheap)
        if part.accept is not None and accept is not None:
            accept[test] = part.accept
        else:
            accept = None
        bands.add(None if part.accurate is None else part.band)
        if part.accurate is not None:
            accurate[test] = part.accurate
    if bands != {None}:  # a gated router (every fold is the same kind)
        return Predictions(quality, scaled_cost, accurate=accurate, band=float(bands.pop() or 0.0))
    if accept is None or len(cheap) != 1:  # a fold without a checker (or with another cheap model): no cascade
        return Predictions(quality, scaled_cost)
    return Predictions(quality, scaled_cost, accept=accept, cheap=cheap.pop())


def evaluate_cv(makers: Mapping[str, Callable[[], Router]], data: OutcomeDataset, scheme: str = "groups",
                folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Like `evaluate`, on out-of-fold predictions: every query is scored by a router that never saw it (`random`)
    or never saw its group (`groups`), as one held-out set. Routers fit on every fold's rest, gaps included."""
    if not makers:
        raise UserError("nothing to evaluate: give at least one router")
    test_folds = cv_folds(data, scheme, folds, seed)
    rows = np.flatnonzero(data.known.all(axis=1))
    scored = _scored_part(data)
    strong_model = data.models[int(np.argmax(np.nanmean(data.cost_usd, axis=0)))]
    strong = data.models.index(strong_model)
    result = _document(data, scored, strong_model if len(data.models) == 2 else None)
    result["split"] = {"scheme": scheme, "folds": len(test_folds),
                       "groups": sorted(set(data.group_labels())) if scheme == "groups" else None}
    for name, router in baselines(scored, seed).items():
        result["routers"][name] = score_points(sweep(router, scored), scored, strong_model)
    for name, make in makers.items():
        pred = cross_val_predictions(make, data, test_folds)
        result["routers"][name] = score_points(sweep_predictions(pred.rows(rows), scored, strong), scored,
                                               strong_model)
    return result


def plot_frontiers(result: dict[str, Any], path: str | Path, title: str = "Routing frontier") -> Path:
    """Write the routers' cost/quality frontiers and the single models as one self-contained HTML page (`.html`),
    drawn by `truecost.report` like every other chart in truecost."""
    from truecost.report import Report, Section, Table, render_html
    from truecost.report.charts import line_chart

    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--plot {out}: the frontier is an HTML page; give a path ending in .html")
    series: dict[str, Sequence[tuple[float, float]]] = {
        name: [(float(c), float(q)) for c, q in scores["frontier"]] for name, scores in result["routers"].items()}
    models = {model.split("/")[-1]: (stats["cost_usd"], stats["quality"]) for model, stats in result["models"].items()}
    chart = line_chart(series, title=title, x_label="mean cost per query (USD)", y_label="mean quality",
                       points=models)
    table = Table(["model", "mean cost per query (USD)", "mean quality"],
                  [[model, cost, quality] for model, (cost, quality) in models.items()])
    section = Section(title, paragraphs=[f"{result['n_queries']} held-out queries; each line is a router swept "
                                         "over its knob, each point a single model."], tables=[table], charts=[chart])
    out.write_text(render_html(Report("truecost route eval", sections=[section])), encoding="utf-8")
    return out
