"""`truecost estimate`: what training and serving will cost, before spending. (Foundation: a first example.)"""

from __future__ import annotations

import typer
from rich.table import Table

from truecost.cli._common import JSON_OPTION, console, load_config, print_json


def register(app: typer.Typer) -> None:
    """Add the `estimate` command to the root app."""

    @app.command("estimate")
    def estimate(as_json: bool = JSON_OPTION) -> None:
        """Estimate the cost of training the target model in truecost.toml (default: a 7B fine-tune)."""
        from truecost.estimate.quick import quick_training_estimate

        cfg = load_config()
        result = quick_training_estimate(cfg)
        if as_json:
            print_json(result)
            return
        table = Table(title=f"Training estimate: {result['model']} on {result['gpus']}x {result['gpu']}")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for key, value in result.items():
            table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
        console.print(table)
