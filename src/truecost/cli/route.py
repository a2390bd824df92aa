"""`truecost route import|fit|eval`: learn which model should answer which prompt, from your own outcomes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.route.base import Router
    from truecost.route.outcomes import OutcomeDataset

route_app = typer.Typer(
    help="Fit and evaluate cost-aware routers from your own evaluation data (outcomes JSONL).",
    no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `route` group to the root app."""
    app.add_typer(route_app, name="route")


@route_app.command("import")
def import_cmd(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="routerbench or routellm."),
    source: Path = typer.Argument(..., help="The public file (RouteLLM: a CSV or a folder of CSVs)."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the outcomes JSONL."),
    contaminated: Path | None = typer.Option(None, help="routellm: JSONL of prompts to drop (RouteLLM's list)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Convert RouterBench or RouteLLM outcomes into truecost's outcomes JSONL (one query a line).

    Empty cells (a model not run or not graded on a query) are kept as missing outcomes and counted.
    """
    from truecost.route.importers import ImportStats, import_outcomes
    from truecost.route.outcomes import write_outcomes

    stats = ImportStats()
    count = write_outcomes(import_outcomes(fmt, source, contaminated, stats), out)
    summary = {"format": fmt, "source": str(source), "out": str(out), **stats.as_dict(), "queries": count}
    if as_json:
        print_json(summary)
        return
    console.print(f"wrote {count} queries to {out}", markup=False)
    if stats.missing:
        by_model = ", ".join(f"{m}: {n}" for m, n in sorted(stats.missing_by_model.items()))
        console.print(f"{stats.missing} missing outcomes kept as missing ({by_model})", markup=False)


@route_app.command("fit")
def fit_cmd(
    data: Path = typer.Option(..., "--data", help="Training outcomes JSONL."),
    router: str = typer.Option("knn", "--router", help="knn, mf, classifier or cascade."),
    out: Path = typer.Option(..., "--out", help="Folder to save the fitted router in (JSON + .npz)."),
    embedder: str = typer.Option("auto", help="auto (MiniLM when installed), minilm[-int8|-onnx|-torch], "
                                 "minilm-static (distilled: ~100x faster) or tfidf."),
    models: str | None = typer.Option(None, help="Comma-separated models to route between (default: all)."),
    seed: int = typer.Option(0, help="Random seed."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit a router on outcomes and save it; the gateway loads it with `truecost.route.load_router`."""
    from truecost.route.outcomes import read_outcomes
    from truecost.route.routers import LEARNED_ROUTERS
    from truecost.route.runs import fit_router

    if router not in LEARNED_ROUTERS:
        raise UserError(f"unknown router {router!r}; choose one of {', '.join(LEARNED_ROUTERS)}")
    cfg = load_config()
    dataset = read_outcomes(data, cfg)
    if models:
        dataset = dataset.select_models([m.strip() for m in models.split(",") if m.strip()])
    _report_missing(dataset)
    err_console.print(f"fitting {router} on {len(dataset)} queries x {len(dataset.models)} models", markup=False)
    done = fit_router(router, dataset, embedder=embedder, seed=seed, out=out, ledger=open_ledger(), config=cfg,
                      params={"data": str(data)})
    fitted, embedder_kind = done.router, done.router.embedder_name
    summary = {"router": router, "out": str(out), "queries": len(dataset), "models": dataset.models,
               "embedder": embedder_kind, "run_id": done.run_id}
    if len(dataset.models) == 2:
        summary["strong_model"] = fitted.strong_model
        summary["knob_for_strong_share"] = {f"{s:.0%}": fitted.knob_for_strong_share(s) for s in (0.2, 0.5, 0.8)}
    if as_json:
        print_json(summary)
    else:
        console.print(f"saved {router} router ({embedder_kind} embeddings) to {out}", markup=False)


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _load_routers(folders: list[Path]) -> dict[str, Router]:
    from truecost.route.base import load_router

    routers: dict[str, Router] = {}
    for folder in folders:
        loaded = load_router(folder)
        name = loaded.name if loaded.name not in routers else f"{loaded.name}:{folder}"
        routers[name] = loaded
    return routers


def _makers(names: list[str], embedder: str, seed: int) -> dict[str, Callable[[], Router]]:
    from truecost.route.base import router_class
    from truecost.route.routers import LEARNED_ROUTERS

    for name in names:
        if name not in LEARNED_ROUTERS:
            raise UserError(f"unknown router {name!r}; choose one of {', '.join(LEARNED_ROUTERS)}")
    return {name: functools.partial(router_class(name), embedder=embedder, seed=seed) for name in names}


@route_app.command("eval")
def eval_cmd(
    router: list[Path] = typer.Option([], "--router", help="Saved router folder (repeat for several)."),
    data: Path = typer.Option(..., "--data", help="Outcomes JSONL: held-out data for --router; all data for --fit."),
    fit: list[str] = typer.Option([], "--fit", help="Instead of saved routers: cross-validate this router kind "
                                  "(repeat), on random folds and on held-out groups (subjects/tasks)."),
    folds: int = typer.Option(5, "--folds", min=2, help="--fit: number of folds (at most the number of groups)."),
    embedder: str = typer.Option("auto", help="--fit: auto, minilm[-int8|-onnx|-torch|-static] or tfidf."),
    models: str | None = typer.Option(None, help="Comma-separated models to route between (default: all)."),
    plot: Path | None = typer.Option(None, "--plot", help="--router: write the cost/quality frontiers to this HTML "
                                     "page (.html)."),
    seed: int = typer.Option(0, help="Seed of the random baseline and the folds."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Score routers against the random, zero and oracle baselines: APGR, CPT, AIQ, cost saving, frontier.

    With --router: saved routers on held-out outcomes. With --fit: each router kind is fitted and scored K times,
    once on random folds and once holding whole groups out (MMLU subjects, RouterBench tasks: the `group` of each
    query), so the second score says how the router does on kinds of prompt it never saw.
    """
    from truecost.route.evaluate import plot_frontiers
    from truecost.route.outcomes import read_outcomes
    from truecost.route.runs import evaluate_routers

    if bool(router) == bool(fit):
        raise UserError("give either --router (saved routers) or --fit (router kinds to cross-validate)")
    if fit and plot is not None:
        raise UserError("--plot draws saved routers' frontiers on one held-out file: use it with --router")
    if plot is not None and plot.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--plot {plot}: the frontier is an HTML page; give a path ending in .html")
    saved = _load_routers(router)  # a wrong folder is reported before the data is read
    makers = _makers(fit, embedder, seed) if fit else None
    cfg = load_config()
    dataset = read_outcomes(data, cfg)
    if models:
        dataset = dataset.select_models([m.strip() for m in models.split(",") if m.strip()])
    _report_missing(dataset)
    params = {"routers": [str(r) for r in router] or fit, "data": str(data), "folds": folds if fit else None}
    results = evaluate_routers(dataset, routers=saved, makers=makers, folds=folds, seed=seed, ledger=open_ledger(),
                               config=cfg, params=params)
    result: dict[str, Any] = results["held_out"] if router else {"splits": results}
    if plot is not None:
        result["plot"] = str(plot_frontiers(result, plot))
    if as_json:
        print_json(result)
        return
    for scheme, one in results.items():
        _print_scores(one, scheme)
    if plot is not None:
        console.print(f"frontier plot: {plot}", markup=False)


def _report_missing(dataset: OutcomeDataset) -> None:
    missing = dataset.missing_by_model()
    if missing:
        by_model = ", ".join(f"{m}: {n}" for m, n in missing.items())
        err_console.print(f"{sum(missing.values())} missing outcomes ({by_model}): skipped when fitting; queries "
                          "with any are left out of the scores", markup=False)


def _print_scores(result: dict[str, Any], scheme: str) -> None:
    split = {"held_out": "held-out file", "random": "random folds", "groups": "held-out groups"}[scheme]
    left_out = result["n_queries_missing_outcomes"]
    table = Table(title=f"Routers on {result['n_queries']} queries, {split} (best single: "
                        f"{result['best_single_model']}" + (f"; {left_out} with missing outcomes left out)"
                                                             if left_out else ")"))
    for column in ("router", "APGR", "CPT(50%)", "CPT(80%)", "AIQ", "saving @best", "saving @98%"):
        table.add_column(column, justify="left" if column == "router" else "right")
    for name, s in result["routers"].items():
        table.add_row(name, _fmt(s["apgr"]), _fmt(s["cpt_50"]), _fmt(s["cpt_80"]), _fmt(s["aiq"]),
                      _fmt(s["cost_saving_at_best_single_quality"]),
                      _fmt(s["cost_saving_at_98pct_best_single_quality"]))
    console.print(table)
