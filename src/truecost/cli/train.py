"""`truecost train / tune`: not landed yet (issue #5)."""

from __future__ import annotations

import typer

from truecost.cli._common import JSON_OPTION, not_yet

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def register(app: typer.Typer) -> None:
    """Add the train commands to the root app."""

    @app.command("train", context_settings=_PASS_THROUGH)
    def train(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Fine-tune or pre-train a Hugging Face model under a hard budget, metered."""
        not_yet("train", 5)

    @app.command("tune", context_settings=_PASS_THROUGH)
    def tune(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Tune hyperparameters with pruned trials, every trial's cost recorded."""
        not_yet("tune", 5)
