"""`truecost gateway`: not landed yet (issue #6)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the gateway command to the root app."""

    @app.command("gateway", context_settings=_PASS_THROUGH)
    def gateway(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Serve an OpenAI-compatible gateway that routes each request by cost and quality."""
        not_yet("gateway", 6)
