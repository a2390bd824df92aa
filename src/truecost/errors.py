"""Errors that mean the user asked for something wrong: the CLI prints them as one line and exits 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input (bad path, bad value, malformed file), not a bug in truecost."""


class MissingExtra(UserError):
    """An optional dependency is not installed; the message carries the exact pip line."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}: pip install 'truecost[{extra}]'")
        self.package = package
        self.extra = extra


def existing_file(path: str | Path, what: str = "") -> Path:
    """`path` as a Path when it is a file; else a UserError saying whether it is missing or is a folder (a folder
    given where a file belongs is a different mistake from a typo, and the message says which)."""
    p = Path(path)
    named = f"{what} {p}" if what else str(p)
    if p.is_dir():
        raise UserError(f"{named} is a folder, not a file")
    if not p.is_file():
        raise UserError(f"{named} does not exist")
    return p
