"""`truecost route import|fit|eval`: learn which model should answer which prompt, from your own outcomes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json
from truecost.errors import UserError

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
    """Convert RouterBench or RouteLLM outcomes into truecost's outcomes JSONL (one query a line)."""
    from truecost.route.importers import import_outcomes
    from truecost.route.outcomes import write_outcomes

    count = write_outcomes(import_outcomes(fmt, source, contaminated), out)
    summary = {"format": fmt, "source": str(source), "out": str(out), "queries": count}
    if as_json:
        print_json(summary)
    else:
        console.print(f"wrote {count} queries to {out}")


@route_app.command("fit")
def fit_cmd(
    data: Path = typer.Option(..., "--data", help="Training outcomes JSONL."),
    router: str = typer.Option("knn", "--router", help="knn, mf, classifier or cascade."),
    out: Path = typer.Option(..., "--out", help="Folder to save the fitted router in (JSON + .npz)."),
    embedder: str = typer.Option("auto", help="auto (MiniLM when installed), minilm or tfidf."),
    models: str | None = typer.Option(None, help="Comma-separated models to route between (default: all)."),
    seed: int = typer.Option(0, help="Random seed."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit a router on outcomes and save it; the gateway loads it with `truecost.route.load_router`."""
    from truecost.route.base import router_class
    from truecost.route.outcomes import read_outcomes
    from truecost.route.routers import LEARNED_ROUTERS

    if router not in LEARNED_ROUTERS:
        raise UserError(f"unknown router {router!r}; choose one of {', '.join(LEARNED_ROUTERS)}")
    dataset = read_outcomes(data, load_config())
    if models:
        dataset = dataset.select_models([m.strip() for m in models.split(",") if m.strip()])
    cfg = load_config()
    params = {"router": router, "data": str(data), "embedder": embedder, "seed": seed}
    with open_ledger().run("route", f"fit {router}", params=params, prices=cfg.compute_prices()) as run:
        err_console.print(f"fitting {router} on {len(dataset)} queries x {len(dataset.models)} models")
        fitted = router_class(router)(embedder=embedder, seed=seed).fit(dataset)
        fitted.save(out)
        embedder_kind = fitted.embedder_.kind
        run.results.update({"queries": len(dataset), "models": dataset.models, "out": str(out),
                            "embedder": embedder_kind})
    summary = {"router": router, "out": str(out), "queries": len(dataset), "models": dataset.models,
               "embedder": embedder_kind, "run_id": run.id}
    if len(dataset.models) == 2:
        summary["strong_model"] = fitted.strong_model
        summary["knob_for_strong_share"] = {f"{s:.0%}": fitted.knob_for_strong_share(s) for s in (0.2, 0.5, 0.8)}
    if as_json:
        print_json(summary)
    else:
        console.print(f"saved {router} router ({embedder_kind} embeddings) to {out}")


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


@route_app.command("eval")
def eval_cmd(
    router: list[Path] = typer.Option(..., "--router", help="Saved router folder (repeat for several)."),
    data: Path = typer.Option(..., "--data", help="Held-out outcomes JSONL."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the cost/quality frontiers to this PNG."),
    seed: int = typer.Option(0, help="Seed of the random baseline."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Score routers against the random, zero and oracle baselines: APGR, CPT, AIQ, cost saving, frontier."""
    from truecost.route.base import load_router
    from truecost.route.evaluate import evaluate, plot_frontiers
    from truecost.route.outcomes import read_outcomes

    cfg = load_config()
    routers = {}
    for folder in router:
        loaded = load_router(folder)
        name = loaded.name if loaded.name not in routers else f"{loaded.name}:{folder}"
        routers[name] = loaded
    dataset = read_outcomes(data, cfg)
    params = {"routers": [str(r) for r in router], "data": str(data)}
    with open_ledger().run("route", "eval", params=params, prices=cfg.compute_prices()) as run:
        result = evaluate(routers, dataset, seed=seed)
        run.results.update({name: {k: v for k, v in s.items() if k != "frontier"}
                            for name, s in result["routers"].items()})
    if plot is not None:
        result["plot"] = str(plot_frontiers(result, plot))
    if as_json:
        print_json(result)
        return
    table = Table(title=f"Routers on {len(dataset)} queries (best single: "
                        f"{result['best_single_model']})")
    for column in ("router", "APGR", "CPT(50%)", "CPT(80%)", "AIQ", "saving @best", "saving @98%"):
        table.add_column(column, justify="left" if column == "router" else "right")
    for name, s in result["routers"].items():
        table.add_row(name, _fmt(s["apgr"]), _fmt(s["cpt_50"]), _fmt(s["cpt_80"]), _fmt(s["aiq"]),
                      _fmt(s["cost_saving_at_best_single_quality"]),
                      _fmt(s["cost_saving_at_98pct_best_single_quality"]))
    console.print(table)
    if plot is not None:
        console.print(f"frontier plot: {plot}")
