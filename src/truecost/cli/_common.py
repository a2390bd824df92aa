"""Shared CLI plumbing: global options, JSON vs Rich output, and turning user mistakes into one line."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperOption

from truecost.errors import UserError


def _flags_show_no_type() -> None:
    """typer prints `<bool>` beside every on/off flag in --help; a flag takes no value, so it shows none."""
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger

# Rich output for people goes to stdout; progress and messages go to stderr so `--json` stdout stays clean.
console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout and nothing else there.")


@dataclass
class GlobalOptions:
    """Options given before the sub-command (`truecost --ledger URL ledger list`)."""

    ledger_url: str | None = None
    config_path: Path | None = None
    debug: bool = False


STATE = GlobalOptions()


def load_config() -> Config:
    """The project config from `--config`, or ./truecost.toml, or defaults."""
    from truecost.config import load_config as _load

    return _load(STATE.config_path)


def open_ledger(url: str | None = None, *, reap: bool = True) -> Ledger:
    """The ledger chosen by `--ledger`, $TRUECOST_LEDGER, truecost.toml or the default path."""
    from truecost.ledger import Ledger

    config_url = load_config().ledger.url
    ledger = Ledger(url or STATE.ledger_url, config_url=config_url, reap=reap)
    if ledger.in_memory:  # the Python API may keep one; a command would record its runs there and lose them at exit
        raise UserError(f"ledger URL {ledger.display_url} is an in-memory database, which forgets every run when "
                        "the command exits; name a file, e.g. sqlite:///.truecost/ledger.db")
    return ledger


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    """Write `data` as one JSON document on stdout; non-finite numbers become null (JSON has no Infinity)."""
    plain = json.loads(json.dumps(data, default=_default))  # objects to plain data first, NaN/inf kept as floats
    sys.stdout.write(json.dumps(_finite(plain), indent=2, sort_keys=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def _finite(value: Any) -> Any:
    """`value` with every float that is NaN or infinite replaced by None, through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
