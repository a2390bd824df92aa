"""`truecost demo`: the true cost of a well- vs a poorly-prepared model, measured end to end."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from truecost.cli._common import JSON_OPTION, console, err_console, load_config, open_ledger, print_json


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root app."""

    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("truecost-demo"), "--out", "-o", help="Folder for the report and artefacts."),
        scale: str = typer.Option("small", "--scale",
                                  help="small (about 1.5 minutes on 2 cores), medium (longer runs), or tiny (a smoke "
                                       "test)."),
        seed: int = typer.Option(0, "--seed", help="Seed for the corpus split, defects and training."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Curate, train, route, monitor and review on built-in real text; report measured and extrapolated $.

        Needs no network and no files: the corpus is the Python standard library's own docstrings, with
        defects injected by a documented generator. Every step is recorded in the ledger.
        """
        from truecost.demo.run import demo as run

        started = time.perf_counter()
        with err_console.status("starting the demo") as status:

            def say(message: str) -> None:
                err_console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {message}", highlight=False)
                status.update(message)

            result = run(out, scale=scale.lower(), seed=seed, config=load_config(), ledger=open_ledger(), say=say)
        if as_json:
            print_json(result)
            return
        ext = result["extrapolated"]["tco"]
        console.print(f"12-month cost, poorly prepared: ${ext['poor']['total_usd']:,.0f}; well prepared: "
                      f"${ext['well']['total_usd']:,.0f}; difference ${ext['difference_usd']:,.0f}", highlight=False)
        console.print(f"report: {result['report_html']}", highlight=False)
