"""Parse human-friendly quantities such as `70B`, `2T`, `1.5e12`, `300M`, `4k`."""

from __future__ import annotations

import math
import re

from truecost.errors import UserError

# One calendar for every part: a month is a twelfth of a 365-day year (730 h), as cloud price sheets bill it.
DAYS_PER_YEAR = 365.0
HOURS_PER_YEAR = DAYS_PER_YEAR * 24.0
DAYS_PER_MONTH = DAYS_PER_YEAR / 12.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0

_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)\s*$")


def parse_quantity(text: str | float | int, *, what: str = "value", allow_zero: bool = False) -> float:
    """Return the number that `text` spells (`70B` -> 7e10); raise UserError on anything else or a negative."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _PATTERN.match(str(text).replace("_", "").replace(",", ""))
        if match is None:
            raise UserError(
                f"{what}: cannot read {text!r} as a number (examples: 1e12, 2T, 70B, 300M, 4k)"
            )
        value = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if not math.isfinite(value):
        raise UserError(f"{what} must be a finite number, got {text!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{what} must be {'non-negative' if allow_zero else 'positive'}, got {text!r}")
    return value


def format_quantity(value: float, unit: str = "") -> str:
    """Render 7e10 as `70.0B`: the inverse of parse_quantity, for tables."""
    for suffix, scale in (("P", 1e15), ("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}{unit}"
    return f"{value:.3g}{unit}"
