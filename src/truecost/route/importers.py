"""Convert the two public routing-outcome formats into truecost's outcomes JSONL records.

- RouterBench (CSV): `sample_id, prompt, eval_name`, then per model `<model>` (0/1), `<model>|model_response`,
  `<model>|total_cost` (USD actually paid). `eval_name` (the task) becomes the query's group.
- RouteLLM (CSV, or a folder of them): `prompt`, then one True/False column per model; no cost (it then comes
  from per-token prices when the outcomes file is read). The file's name (the MMLU subject) becomes the group.
  Contaminated prompts can be dropped with a JSONL file of `{"train_prompt"|"eval_prompt"|"prompt": ...}` lines,
  as RouteLLM's own evaluation does.

Real files have gaps: an empty correctness (or RouterBench cost) cell is a missing outcome, written as
`"quality": null` and counted per model in `ImportStats`; it never stops the import.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.errors import UserError, existing_file

FORMATS = ("routerbench", "routellm")
_COST_SUFFIX = "|total_cost"
_RESPONSE_SUFFIX = "|model_response"


@dataclass
class ImportStats:
    """What an import did: queries written and missing outcomes per model (empty cells)."""

    queries: int = 0
    missing_by_model: Counter[str] = field(default_factory=Counter)

    @property
    def missing(self) -> int:
        """Missing outcomes in all."""
        return sum(self.missing_by_model.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"queries": self.queries, "missing_outcomes": self.missing,
                "missing_by_model": dict(sorted(self.missing_by_model.items()))}


def _open_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise UserError(f"{path}: empty file, expected a CSV header")
        for row in reader:
            yield reader.line_num, row


def _unlist(text: str) -> str:
    """RouterBench stores prompts/responses as a Python list literal of turns; join the turns."""
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    return text


def _number(value: str, where: str, column: str, low: float | None = None, high: float | None = None) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{where}: column {column!r}: expected a number, got {value!r}") from None
    if (low is not None and number < low) or (high is not None and number > high) or number != number:
        raise UserError(f"{where}: column {column!r}: {number} is outside [{low}, {high}]")
    return number


def _routerbench_models(path: Path, row: dict[str, str]) -> list[str]:
    """The models of a RouterBench header (those with a cost column), checking the columns it needs."""
    missing = [c for c in ("sample_id", "prompt") if c not in row]
    models = [c[: -len(_COST_SUFFIX)] for c in row if c.endswith(_COST_SUFFIX)]
    if missing or not models:
        raise UserError(f"{path}: not a RouterBench CSV: needs columns sample_id, prompt and "
                        f"'<model>{_COST_SUFFIX}' (missing: {', '.join(missing) or 'model cost columns'})")
    absent = [m for m in models if m not in row]
    if absent:
        raise UserError(f"{path}: no correctness column for model(s) {', '.join(absent)}")
    return models


def _routerbench_outcome(row: dict[str, str], model: str, where: str, with_responses: bool) -> dict[str, Any] | None:
    """One model's outcome on one row; None when its correctness or cost cell is empty (not run or not graded)."""
    correct, cost = (row[model] or "").strip(), (row[model + _COST_SUFFIX] or "").strip()
    if not correct or not cost:
        return None
    entry: dict[str, Any] = {"quality": _number(correct, where, model, 0.0, 1.0),
                             "cost": _number(cost, where, model + _COST_SUFFIX, 0.0, None)}
    response = row.get(model + _RESPONSE_SUFFIX)
    if with_responses and response is not None:
        entry["response"] = _unlist(response)
    return entry


def import_routerbench(path: str | Path, with_responses: bool = True, stats: ImportStats | None = None
                       ) -> Iterator[dict[str, Any]]:
    """Outcome records from a RouterBench CSV (correctness in [0, 1] and the real per-query cost)."""
    path = existing_file(path, "RouterBench file")
    stats = stats if stats is not None else ImportStats()
    models: list[str] | None = None
    for line, row in _open_csv(path):
        models = models or _routerbench_models(path, row)
        outcomes: dict[str, dict[str, Any]] = {}
        for model in models:
            entry = _routerbench_outcome(row, model, f"{path}:{line}", with_responses)
            if entry is None:
                stats.missing_by_model[model] += 1
            outcomes[model] = entry if entry is not None else {"quality": None}
        stats.queries += 1
        record = {"id": row["sample_id"], "prompt": _unlist(row["prompt"])}
        if row.get("eval_name"):
            record["group"] = row["eval_name"]
        yield {**record, "outcomes": outcomes}


def _contaminated(path: Path | None) -> set[str]:
    if path is None:
        return set()
    existing_file(path, "contamination file")
    prompts: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object")
            prompts.update(str(v).strip() for k, v in record.items() if "prompt" in k)
    return prompts


_BOOL = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def _routellm_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise UserError(f"{path}: no .csv files in this folder")
        return files
    if path.is_file():
        return [path]
    raise UserError(f"RouteLLM file {path} does not exist")


def import_routellm(path: str | Path, contaminated: str | Path | None = None, stats: ImportStats | None = None
                    ) -> Iterator[dict[str, Any]]:
    """Outcome records from a RouteLLM responses CSV, or every `*.csv` in a folder (ids: `<file stem>/<CSV line>`)."""
    files = _routellm_files(Path(path))
    drop = _contaminated(Path(contaminated) if contaminated else None)
    stats = stats if stats is not None else ImportStats()
    for file in files:
        models: list[str] | None = None
        for line, row in _open_csv(file):
            if models is None:
                if "prompt" not in row:
                    raise UserError(f"{file}: not a RouteLLM responses CSV: no 'prompt' column")
                models = [c for c in row if c != "prompt" and c]
                if len(models) < 2:
                    raise UserError(f"{file}: expected a correctness column per model, found {models}")
            if row["prompt"].strip() in drop:
                continue
            outcomes: dict[str, dict[str, Any]] = {}
            for model in models:
                value = (row[model] or "").strip().lower()
                if value and value not in _BOOL:
                    raise UserError(f"{file}:{line}: column {model!r}: expected True/False, got {row[model]!r}")
                if not value:
                    stats.missing_by_model[model] += 1
                outcomes[model] = {"quality": _BOOL[value] if value else None}
            stats.queries += 1
            yield {"id": f"{file.stem}/{line}", "prompt": row["prompt"], "group": file.stem, "outcomes": outcomes}


def import_outcomes(fmt: str, path: str | Path, contaminated: str | Path | None = None,
                    stats: ImportStats | None = None) -> Iterator[dict[str, Any]]:
    """Records from `path` in public format `fmt` (routerbench or routellm); `stats` counts what was read."""
    if fmt == "routerbench":
        if contaminated is not None:
            raise UserError("--contaminated applies to the routellm format only")
        return import_routerbench(path, stats=stats)
    if fmt == "routellm":
        return import_routellm(path, contaminated, stats)
    raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
