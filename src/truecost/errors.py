"""Errors that mean the user asked for something wrong: the CLI prints them as one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (bad path, bad value, malformed file), not a bug in truecost."""


class MissingExtra(UserError):
    """An optional dependency is not installed; the message carries the exact pip line."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}: pip install 'truecost[{extra}]'")
        self.package = package
        self.extra = extra
