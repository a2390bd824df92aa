"""`truecost ledger list|show|export|reap`: read the store of measured costs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.table import Table

from truecost.cli._common import JSON_OPTION, console, open_ledger, print_json
from truecost.errors import UserError
from truecost.ledger.records import RUN_KINDS, RUN_STATUSES

if TYPE_CHECKING:
    from truecost.ledger import RunRecord, RunTree

ledger_app = typer.Typer(help="Every measured run and what it cost (SQLite by default, PostgreSQL by URL).",
                         no_args_is_help=True)

# Columns dropped first when the terminal is narrow; the rest always show (full figures: --json).
_WIDE_ONLY = ("wall s", "GPU h", "kWh")
_WIDE_COLUMNS = 110


def register(app: typer.Typer) -> None:
    """Add the `ledger` group to the root app."""
    app.add_typer(ledger_app, name="ledger")


def _check_choice(value: str | None, choices: tuple[str, ...], what: str) -> None:
    if value is not None and value not in choices:
        raise UserError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


def _runs_table(runs: list[RunRecord], title: str, depths: list[int] | None = None) -> Table:
    """One row per run; fits 80 columns (the name wraps, nothing else is cut) and shows more when wider."""
    wide = console.width >= _WIDE_COLUMNS
    table = Table(title=title, box=None, padding=(0, 1), pad_edge=False, title_justify="left",
                  header_style="bold underline")
    table.add_column("id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8, ratio=1)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    for column in ("wall s", "CPU s", "GPU h", "kWh", "cost $", "tokens"):
        if wide or column not in _WIDE_ONLY:
            table.add_column(column, justify="right", no_wrap=True)
    for i, run in enumerate(runs):
        indent = "  " * (depths[i] if depths else 0)
        figures = {"wall s": f"{run.wall_seconds:.1f}", "CPU s": f"{run.cpu_seconds:.1f}",
                   "GPU h": f"{run.gpu_hours:.3g}", "kWh": f"{run.energy_kwh:.3g}", "cost $": _dollars(run.cost_usd),
                   "tokens": f"{run.tokens:,}"}
        started = run.started_at.astimezone().strftime("%Y-%m-%d %H:%M" if wide else "%m-%d %H:%M")
        table.add_row(run.id[:8], run.kind, indent + run.name, run.status, started,
                      *(value for column, value in figures.items() if wide or column not in _WIDE_ONLY))
    return table


def _dollars(value: float) -> str:
    """At most 8 characters: `0`, `7.9e-07`, `0.1234`, `1,235`."""
    if value == 0:
        return "0"
    return f"{value:.1e}" if abs(value) < 1e-3 else f"{value:,.4g}"


@ledger_app.command("list")
def list_runs(
    kind: str | None = typer.Option(None, help=f"Only runs of this kind ({', '.join(RUN_KINDS)})."),
    status: str | None = typer.Option(None, help=f"Only runs with this status ({', '.join(RUN_STATUSES)})."),
    parent: str | None = typer.Option(None, help="Only the runs opened under this run id."),
    limit: int = typer.Option(50, min=1, help="At most this many runs, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List runs, newest first (a run whose process died shows as `lost`, with the spend it reached)."""
    _check_choice(kind, RUN_KINDS, "kind")
    _check_choice(status, RUN_STATUSES, "status")
    ledger = open_ledger()
    parent_id = ledger.get_run(parent).id if parent else None
    runs = ledger.list_runs(kind=kind, status=status, limit=limit, parent_id=parent_id)
    if as_json:
        print_json([run.to_dict() for run in runs])
        return
    if not runs:
        console.print("The ledger holds no runs yet." if not (kind or status or parent) else "No run matches.")
        return
    console.print(_runs_table(runs, f"{len(runs)} run(s); figures are each run's own share"))


@ledger_app.command("show")
def show_run(run_id: str = typer.Argument(..., help="A run id or a unique prefix of one."),
             as_json: bool = JSON_OPTION) -> None:
    """Show one run with its parameters, results and the runs opened under it."""
    tree = open_ledger().tree(run_id)
    run = tree.run
    if as_json:
        print_json({**run.to_dict(), "total_with_children": tree.total.to_dict(),
                    "children": [child.to_dict() for child in tree.children]})
        return
    table = Table(show_header=False, title=f"run {run.id}", box=box.SIMPLE, title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in run.to_dict().items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
    if tree.children:
        _print_children(tree)


def _print_children(tree: RunTree) -> None:
    nodes = list(tree.walk())[1:]
    console.print(_runs_table([node.run for _, node in nodes], "runs opened under it (own share each)",
                              depths=[depth - 1 for depth, _ in nodes]))
    total = tree.total
    console.print(f"with the {len(nodes)} run(s) under it: {total.cpu_seconds:.1f} CPU-s, {total.gpu_hours:.3g} "
                  f"GPU-h, ${_dollars(total.cost_usd)}, {total.tokens:,} tokens, each counted once", highlight=False,
                  markup=False)


@ledger_app.command("reap")
def reap_runs(as_json: bool = JSON_OPTION) -> None:
    """Mark runs whose process died (no heartbeat, or its pid gone on this host) as `lost`, keeping their spend.

    Every command that opens the ledger does this too; this command says what it found.
    """
    ledger = open_ledger(reap=False)
    lost = ledger.reap()
    if as_json:
        print_json([run.to_dict() for run in lost])
        return
    if not lost:
        console.print("No lost runs: every `running` run is alive.")
        return
    console.print(_runs_table(lost, f"{len(lost)} run(s) marked lost"))
    for run in lost:
        console.print(f"{run.id[:8]}: {run.results['lost']['reason']}", highlight=False, markup=False)


@ledger_app.command("export")
def export_runs(
    fmt: str = typer.Option("jsonl", "--format", help="csv or jsonl."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    kind: str | None = typer.Option(None, help="Only runs of this kind."),
) -> None:
    """Export runs as CSV or JSON Lines."""
    from truecost.ledger.export import write_runs

    _check_choice(fmt, ("csv", "jsonl"), "format")
    _check_choice(kind, RUN_KINDS, "kind")
    runs = open_ledger().list_runs(kind=kind)
    if output is None:
        write_runs(runs, sys.stdout, fmt)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = write_runs(runs, handle, fmt)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from exc
    console.print(f"wrote {count} run(s) to {output}", highlight=False, markup=False)


@ledger_app.command("spend")
def spend(
    by: str = typer.Option("key", "--by", help="Group by key, team, user, tag, model or route."),
    since: str | None = typer.Option(None, help="From this time (ISO 8601, UTC unless it says otherwise)."),
    until: str | None = typer.Option(None, help="Up to (not including) this time."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Gateway spend (and what the cache saved) per key, team, user, tag, model or route."""
    from datetime import UTC, datetime

    from truecost.ledger.spend import GROUPS

    _check_choice(by, GROUPS, "group")
    try:
        bounds = [None if t is None else datetime.fromisoformat(t) for t in (since, until)]
    except ValueError as exc:
        raise UserError(f"--since/--until: {exc}") from exc
    since_at, until_at = (b if b is None or b.tzinfo else b.replace(tzinfo=UTC) for b in bounds)
    rows = open_ledger().spend(by, since=since_at, until=until_at)
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    table = Table(title=f"spend by {by}")
    for column in (by, "requests", "cost $", "saved $", "cache hits", "prompt tokens", "completion tokens"):
        table.add_column(column, justify="left" if column == by else "right")
    for row in rows:
        table.add_row(row.group or "(none)", f"{row.requests:,}", f"{row.cost_usd:.6g}", f"{row.saved_usd:.6g}",
                      f"{row.cache_hits:,}", f"{row.prompt_tokens:,}", f"{row.completion_tokens:,}")
    console.print(table)
