"""Reading the user's files: seed documents and tasks, the real training set, evaluation sets.

Rows may be in any of the shapes `truecost train` reads (chat `messages`, `prompt` + `response`/`completion`,
`text`) or the Alpaca shape (`instruction` + `input` + `output`); each becomes a `Row` of prompt and response.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truecost.errors import UserError

ROW_SUFFIXES = (".jsonl", ".jsonl.gz")
TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Row:
    """One record: its id, its prompt (or whole text), and its response when it has one."""

    id: str
    prompt: str
    response: str | None = None

    @property
    def text(self) -> str:
        """Everything the record says, as one text (what dedup and decontamination compare)."""
        return self.prompt if self.response is None else f"{self.prompt}\n\n{self.response}"


def files_under(path: Path, what: str) -> list[Path]:
    """`path` itself, or the JSONL and text files in the folder `path`, in a stable order."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(ROW_SUFFIXES + TEXT_SUFFIXES))
    if not found:
        raise UserError(f"{what} {path}: no .jsonl, .jsonl.gz, .txt or .md files in this folder")
    return found


def json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, row) for each non-empty line of a JSONL file; one clear line on a malformed one."""
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    try:
        # utf-8-sig: files saved by Windows tools start with a byte-order mark; plain UTF-8 reads the same.
        with opener(path, "rt", encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{where}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise UserError(f"{where}: each line must be a JSON object")
                yield where, row
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def _content(value: Any) -> str:
    return value if isinstance(value, str) else ""


def row_of(raw: dict[str, Any], where: str, default_id: str) -> Row:
    """The prompt and response of a row in any shape this module reads."""
    row_id = str(raw.get("id", default_id))
    if isinstance(raw.get("messages"), list):
        turns = [m for m in raw["messages"] if isinstance(m, dict)]
        answers = [_content(m.get("content")) for m in turns if m.get("role") == "assistant"]
        asks = [_content(m.get("content")) for m in turns if m.get("role") != "assistant"]
        return Row(row_id, "\n\n".join(a for a in asks if a), "\n\n".join(a for a in answers if a) or None)
    if "prompt" in raw:
        answer = raw.get("response", raw.get("completion"))
        return Row(row_id, _content(raw["prompt"]), _content(answer) if answer is not None else None)
    if "instruction" in raw:
        prompt = "\n\n".join(p for p in (_content(raw["instruction"]), _content(raw.get("input"))) if p)
        answer = raw.get("output", raw.get("response"))
        return Row(row_id, prompt, _content(answer) if answer is not None else None)
    for key in ("text", "question", "document"):
        if isinstance(raw.get(key), str):
            answer = raw.get("answer")
            return Row(row_id, raw[key], str(answer) if isinstance(answer, str | int | float) else None)
    raise UserError(f"{where}: no text found (expected messages, prompt/response, instruction/output or text)")


def read_rows(path: Path, what: str, *, lines_are_rows: bool = False) -> Iterator[Row]:
    """Rows from a JSONL file or a folder of them; a .txt/.md file is one row (or one row per line)."""
    for file in files_under(path, what):
        if file.name.endswith(ROW_SUFFIXES):
            for n, (where, raw) in enumerate(json_rows(file), 1):
                row = row_of(raw, where, f"{file.stem}:{n}")
                if row.prompt.strip():
                    yield row
            continue
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {file}: {exc}") from None
        if lines_are_rows:
            yield from (Row(f"{file.stem}:{n}", line.strip()) for n, line in enumerate(text.splitlines(), 1)
                        if line.strip())
        elif text.strip():
            yield Row(file.stem, text.strip())
