"""`truecost ledger list|show|export`: read the store of measured costs."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from truecost.cli._common import JSON_OPTION, console, open_ledger, print_json
from truecost.errors import UserError
from truecost.ledger.records import RUN_KINDS, RUN_STATUSES

ledger_app = typer.Typer(help="Every measured run and what it cost (SQLite by default, PostgreSQL by URL).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `ledger` group to the root app."""
    app.add_typer(ledger_app, name="ledger")


def _check_choice(value: str | None, choices: tuple[str, ...], what: str) -> None:
    if value is not None and value not in choices:
        raise UserError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


@ledger_app.command("list")
def list_runs(
    kind: str | None = typer.Option(None, help=f"Only runs of this kind ({', '.join(RUN_KINDS)})."),
    status: str | None = typer.Option(None, help=f"Only runs with this status ({', '.join(RUN_STATUSES)})."),
    limit: int = typer.Option(50, min=1, help="At most this many runs, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List runs, newest first."""
    _check_choice(kind, RUN_KINDS, "kind")
    _check_choice(status, RUN_STATUSES, "status")
    runs = open_ledger().list_runs(kind=kind, status=status, limit=limit)
    if as_json:
        print_json([run.to_dict() for run in runs])
        return
    if not runs:
        console.print("The ledger holds no runs yet.")
        return
    table = Table(title=f"{len(runs)} run(s)")
    for column in ("id", "kind", "name", "status", "started", "wall s", "CPU s", "GPU h", "kWh", "cost $", "tokens"):
        table.add_column(column, justify="right" if column[0].islower() and " " in column else "left")
    for run in runs:
        table.add_row(run.id[:8], run.kind, run.name, run.status, run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                      f"{run.wall_seconds:.1f}", f"{run.cpu_seconds:.1f}", f"{run.gpu_hours:.3g}",
                      f"{run.energy_kwh:.3g}", f"{run.cost_usd:.4g}", f"{run.tokens:,}")
    console.print(table)


@ledger_app.command("show")
def show_run(run_id: str = typer.Argument(..., help="A run id or a unique prefix of one."),
             as_json: bool = JSON_OPTION) -> None:
    """Show one run with its parameters and results."""
    run = open_ledger().get_run(run_id)
    if as_json:
        print_json(run.to_dict())
        return
    table = Table(show_header=False, title=f"run {run.id}")
    for key, value in run.to_dict().items():
        table.add_row(key, str(value))
    console.print(table)


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
    console.print(f"wrote {count} run(s) to {output}", highlight=False)


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
