"""`truecost review`: not landed yet (issue #7)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the review commands to the root app."""

    @app.command("review", context_settings=_PASS_THROUGH)
    def review(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Performance, bias and security review of a model or endpoint, as a report and CI gate."""
        not_yet("review", 7)
