"""The `truecost` program: parse, call the library, render. Each part registers its own commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

from truecost import __version__
from truecost.cli import _common
from truecost.cli import curate as curate_cli
from truecost.cli import demo as demo_cli
from truecost.cli import estimate as estimate_cli
from truecost.cli import gateway as gateway_cli
from truecost.cli import ledger as ledger_cli
from truecost.cli import monitor as monitor_cli
from truecost.cli import report as report_cli
from truecost.cli import review as review_cli
from truecost.cli import route as route_cli
from truecost.cli import synth as synth_cli
from truecost.cli import train as train_cli
from truecost.errors import UserError
from truecost.hf_warnings import ignore_renames

app = typer.Typer(
    name="truecost",
    help="The true cost of building and running an LLM, in dollars, and the levers that cut it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"truecost {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ledger: str | None = typer.Option(None, "--ledger", envvar="TRUECOST_LEDGER",
                                      help="Ledger database URL (default: sqlite .truecost/ledger.db)."),
    config: Path | None = typer.Option(None, "--config", help="Project file (default: ./truecost.toml if present)."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Estimate, curate, train, route, review and monitor LLMs, with every step priced in dollars."""
    _common.STATE.ledger_url = ledger
    _common.STATE.config_path = config
    _common.STATE.debug = debug


for _part in (estimate_cli, curate_cli, train_cli, route_cli, gateway_cli, review_cli, monitor_cli, ledger_cli,
              report_cli, demo_cli, synth_cli):
    _part.register(app)


def main() -> None:
    """Entry point: run the app; a user's mistake becomes one line on stderr and exit code 2."""
    debug = "--debug" in sys.argv[1:] or os.environ.get("TRUECOST_DEBUG") == "1"
    if not debug:
        ignore_renames()  # the library silences them only around its own calls; the CLI for the whole process
    try:
        app()
    except UserError as exc:
        if debug:
            raise
        # The message is the user's text (paths, TOML sections like [[gpus]]): printed as is, never as markup.
        _common.err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _common.err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
