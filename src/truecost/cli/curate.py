"""`truecost curate`: not landed yet (issue #4)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the curate commands to the root app."""

    @app.command("curate", context_settings=_PASS_THROUGH)
    def curate(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Clean, de-duplicate, filter and PII-scrub training text; say what it saved."""
        not_yet("curate", 4)
