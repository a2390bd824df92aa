"""Reading user data files with errors that name the file, the line and the field."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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


def require_plain_file(path: Path | str, what: str) -> Path:
    """Like `require_file`, and a folder where a file is needed is one clear line, not IsADirectoryError."""
    p = require_file(path, what)
    if p.is_dir():
        raise UserError(f"{what}: {p} is a folder; give one of its files")
    return p


def read_jsonl(path: Path | str, what: str = "data", log: LoadLog | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file (bad JSON: see `reject`)."""
    p = require_plain_file(path, what)
    with p.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as exc:
                reject(log, what, f"{where(p, number)}: not valid JSON ({exc.msg} at column {exc.colno})")


def read_json(path: Path | str, what: str = "data") -> Any:
    """A whole JSON document."""
    p = require_plain_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{where(p, exc.lineno)}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def read_csv(path: Path | str, required: tuple[str, ...], what: str = "data",
             log: LoadLog | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each CSV row; the header must name every `required` column."""
    p = require_plain_file(path, what)
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
                reject(log, what, f"{where(p, line)}: field '{empty[0]}' is empty")
                continue
            yield line, row


@dataclass
class LoadLog:
    """What loading public data sets skipped and why (a malformed line is skipped and counted, never fatal), and
    files of a folder that no loader uses."""

    skipped: dict[str, int] = field(default_factory=dict)  # data set -> records skipped
    examples: list[str] = field(default_factory=list)  # the first few reasons, `file:line: why`
    unused: list[str] = field(default_factory=list)  # files in a given folder that hold nothing the review runs

    def skip(self, dataset: str, message: str) -> None:
        self.skipped[dataset] = self.skipped.get(dataset, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(message)

    def summary(self) -> list[str]:
        """One line per data set with skipped records, then the unused files."""
        lines = [f"{name}: skipped {n} malformed record(s)" for name, n in sorted(self.skipped.items())]
        return lines + [f"not used: {u}" for u in self.unused]

    def to_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "examples": self.examples, "unused": self.unused}


def reject(log: LoadLog | None, dataset: str, message: str) -> None:
    """A malformed record: strict loading (no log) stops with the message; a review skips it and counts it."""
    if log is None:
        raise UserError(message)
    log.skip(dataset, message)


def data_files(path: Path | str, patterns: tuple[str, ...], what: str) -> list[Path]:
    """The file itself, or the files under a folder matching any of `patterns` (sorted); an error when none do."""
    p = require_file(path, what)
    if p.is_file():
        return [p]
    found = sorted({f for pattern in patterns for f in p.rglob(pattern) if f.is_file()})
    if not found:
        raise UserError(f"{what}: no {' or '.join(patterns)} files in folder {p}")
    return found


def require_items(items: list[Any], what: str, path: Path | str) -> list[Any]:
    """Never load a data set of 0 items silently."""
    if not items:
        raise UserError(f"{what}: {path} holds no usable items (wrong file, or wrong kind?)")
    return items


R = TypeVar("R")


def parse_or_skip(log: LoadLog | None, dataset: str, parse: Callable[..., R], *args: Any) -> R | None:
    """`parse(*args)`, or None after `reject` when the record is malformed (strict without a log)."""
    try:
        return parse(*args)
    except UserError as exc:
        reject(log, dataset, str(exc))
        return None
