"""`truecost report`: not landed yet (issue #9)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the report commands to the root app."""

    @app.command("report", context_settings=_PASS_THROUGH)
    def report(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """An HTML report of everything the ledger holds, with charts."""
        not_yet("report", 9)
