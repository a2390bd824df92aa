"""`truecost monitor`: not landed yet (issue #8)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the monitor commands to the root app."""

    @app.command("monitor", context_settings=_PASS_THROUGH)
    def monitor(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Drift in inputs, quality, latency and cost, and whether retraining pays."""
        not_yet("monitor", 8)
