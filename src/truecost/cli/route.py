"""`truecost route`: not landed yet (issue #6)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the route commands to the root app."""

    @app.command("route", context_settings=_PASS_THROUGH)
    def route(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Fit and evaluate cost-aware routers from your own evaluation data."""
        not_yet("route", 6)

