"""Reading user data files with errors that name the file, the line and the field."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from truecost.errors import UserError

M = TypeVar("M", bound=BaseModel)


def where(path: Path | str, line: int | None = None) -> str:
    """`file:line` (or just the file) for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


def require_file(path: Path | str, what: str) -> Path:
    """The path as a Path, or a UserError saying which file is missing."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} file {p} does not exist")
    return p


def validate(model: type[M], data: Any, path: Path | str, line: int | None) -> M:
    """Validate one record; a bad one becomes `file:line: field: message (got value)`."""
    if not isinstance(data, dict):
        raise UserError(f"{where(path, line)}: expected an object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(record)"
            got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
            problems.append(f"field '{field}': {err['msg']}{got}")
        raise UserError(f"{where(path, line)}: " + "; ".join(problems)) from None


def read_jsonl(path: Path | str, what: str = "data") -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file."""
    p = require_file(path, what)
    with p.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where(p, number)}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def read_json(path: Path | str, what: str = "data") -> Any:
    """A whole JSON document."""
    p = require_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{where(p, exc.lineno)}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def read_csv(path: Path | str, required: tuple[str, ...], what: str = "data") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each CSV row; the header must name every `required` column."""
    p = require_file(path, what)
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise UserError(f"{where(p, 1)}: missing column(s) {', '.join(missing)} in the header")
        for row in reader:
            line = reader.line_num
            empty = [c for c in required if not (row.get(c) or "").strip()]
            if empty:
                raise UserError(f"{where(p, line)}: field '{empty[0]}' is empty")
            yield line, row
