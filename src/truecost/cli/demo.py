"""`truecost demo`: not landed yet (issue #9)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the demo commands to the root app."""

    @app.command("demo", context_settings=_PASS_THROUGH)
    def demo(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """The true cost of a well- vs a poorly-prepared model, measured end to end."""
        not_yet("demo", 9)
