"""Routing outcomes: what each model scored and cost on each query (the data every router learns from).

JSONL, one query a line: `{"id": str, "prompt": str, "outcomes": {"<model>": {"quality": 0..1, "cost": USD}}}`.
`cost` may be absent; it then comes from per-token prices (`truecost.estimate.token_price_usd`, or
`[route.prices."<model>"]` in truecost.toml). An outcome may also carry `"response"` (the model's answer), which
a cascade's checker reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from truecost.config import Config, describe_validation_error
from truecost.errors import UserError


class ModelPrice(BaseModel):
    """List price of one model in USD per million tokens (truecost.toml `[route.prices."<model>"]`)."""

    model_config = ConfigDict(extra="forbid")
    input_usd_per_1m: float = Field(ge=0)
    output_usd_per_1m: float = Field(ge=0)


class RouteSettings(BaseModel):
    """The `[route]` section of truecost.toml."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # When a file has no cost, token counts are estimated: prompt characters / chars_per_token, and a fixed answer.
    chars_per_token: float = Field(4.0, gt=0)
    completion_tokens: int | None = Field(None, ge=0, description="default: [target].output_tokens")


def route_settings(config: Config | None) -> RouteSettings:
    """Validate the `[route]` section of `config` (defaults when there is none)."""
    data = config.route if config is not None else {}
    try:
        return RouteSettings.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "truecost.toml [route]")) from exc


class _OutcomeLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quality: float = Field(ge=0.0, le=1.0)
    cost: float | None = Field(None, ge=0.0)
    response: str | None = None


class _QueryLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    prompt: str
    outcomes: dict[str, _OutcomeLine] = Field(min_length=1)


@dataclass
class OutcomeDataset:
    """Outcomes as arrays: `quality[i, j]` and `cost_usd[i, j]` are query i's score and price on `models[j]`."""

    ids: list[str]
    prompts: list[str]
    models: list[str]
    quality: np.ndarray
    cost_usd: np.ndarray
    responses: dict[str, list[str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if self.quality.shape != (n, m) or self.cost_usd.shape != (n, m) or len(self.ids) != n:
            raise ValueError(f"outcome arrays must be {(n, m)}; got {self.quality.shape} and {self.cost_usd.shape}")

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, rows: Sequence[int] | np.ndarray) -> OutcomeDataset:
        """The queries at `rows`, in that order."""
        idx = np.asarray(rows, dtype=int)
        return OutcomeDataset(
            ids=[self.ids[i] for i in idx], prompts=[self.prompts[i] for i in idx], models=list(self.models),
            quality=self.quality[idx], cost_usd=self.cost_usd[idx],
            responses={m: [r[i] for i in idx] for m, r in self.responses.items()})

    def select_models(self, models: Sequence[str]) -> OutcomeDataset:
        """The same queries restricted to `models` (in that order)."""
        missing = [m for m in models if m not in self.models]
        if missing:
            raise UserError(f"model(s) not in the data: {', '.join(missing)} (have: {', '.join(self.models)})")
        cols = [self.models.index(m) for m in models]
        return OutcomeDataset(ids=list(self.ids), prompts=list(self.prompts), models=list(models),
                              quality=self.quality[:, cols], cost_usd=self.cost_usd[:, cols],
                              responses={m: r for m, r in self.responses.items() if m in models})

    def split(self, test_fraction: float = 0.5, seed: int = 0) -> tuple[OutcomeDataset, OutcomeDataset]:
        """A random train/test split by query: all copies of one prompt text land on the same side."""
        groups: dict[str, list[int]] = {}
        for i, prompt in enumerate(self.prompts):
            groups.setdefault(prompt, []).append(i)
        keys = list(groups)
        order = np.random.default_rng(seed).permutation(len(keys))
        target, test_rows = test_fraction * len(self), list[int]()
        for g in order:
            if len(test_rows) >= target:
                break
            test_rows.extend(groups[keys[g]])
        test = np.sort(np.array(test_rows, dtype=int))
        train = np.setdiff1d(np.arange(len(self)), test)
        return self.subset(train), self.subset(test)

    def to_records(self) -> Iterable[dict[str, Any]]:
        """One JSON-ready dict per query, in the file format."""
        for i in range(len(self)):
            outcomes: dict[str, dict[str, Any]] = {}
            for j, model in enumerate(self.models):
                entry: dict[str, Any] = {"quality": float(self.quality[i, j]), "cost": float(self.cost_usd[i, j])}
                response = self.responses.get(model, [None] * len(self))[i]
                if response is not None:
                    entry["response"] = response
                outcomes[model] = entry
            yield {"id": self.ids[i], "prompt": self.prompts[i], "outcomes": outcomes}


def estimate_cost_usd(model: str, prompt: str, config: Config | None = None) -> float | None:
    """Dollars for one request from per-token prices: the estimate catalogue first, then `[route.prices]`."""
    from truecost.estimate import token_price_usd

    settings = route_settings(config)
    prompt_tokens = max(1, math.ceil(len(prompt) / settings.chars_per_token))
    completion_tokens = settings.completion_tokens
    if completion_tokens is None:
        completion_tokens = config.target.output_tokens if config is not None else Config().target.output_tokens
    own = settings.prices.get(model)
    if own is not None:
        return (prompt_tokens * own.input_usd_per_1m + completion_tokens * own.output_usd_per_1m) / 1e6
    return token_price_usd(model, prompt_tokens, completion_tokens, config)


def write_outcomes(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write records as JSONL via a temporary file (a failure never leaves half a file); returns the count."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def read_outcomes(path: str | Path, config: Config | None = None) -> OutcomeDataset:
    """Read an outcomes JSONL file; any malformed line raises a UserError naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"outcomes file {path} does not exist")
    ids: list[str] = []
    prompts: list[str] = []
    rows: list[dict[str, _OutcomeLine]] = []
    models: list[str] | None = None
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}: not valid JSON ({exc.msg})") from exc
            try:
                query = _QueryLine.model_validate(raw)
            except ValidationError as exc:
                raise UserError(describe_validation_error(exc, where)) from exc
            if models is None:
                models = list(query.outcomes)
            elif set(query.outcomes) != set(models):
                raise UserError(f"{where}: outcomes: models {sorted(query.outcomes)} differ from the first line's "
                                f"{sorted(models)}; every query needs an outcome for every model")
            ids.append(query.id)
            prompts.append(query.prompt)
            rows.append(query.outcomes)
    if models is None:
        raise UserError(f"{path}: no queries in the file")
    if len(models) < 2:
        raise UserError(f"{path}: routing needs at least two models, found {models}")
    quality = np.array([[row[m].quality for m in models] for row in rows], dtype=float)
    cost = np.empty_like(quality)
    for i, row in enumerate(rows):
        for j, model in enumerate(models):
            given = row[model].cost
            if given is None:
                given = estimate_cost_usd(model, prompts[i], config)
                if given is None:
                    raise UserError(f"{path}:{_line_of(path, i)}: outcomes.{model}.cost: missing, and no price is "
                                    f"known for {model!r}; add it to the file or set [route.prices.\"{model}\"] "
                                    "input_usd_per_1m/output_usd_per_1m in truecost.toml")
            cost[i, j] = given
    responses = {m: [row[m].response for row in rows] for m in models
                 if any(row[m].response is not None for row in rows)}
    return OutcomeDataset(ids=ids, prompts=prompts, models=models, quality=quality, cost_usd=cost,
                          responses=responses)


def _line_of(path: Path, query_index: int) -> int:
    """The 1-based line of the query_index-th non-blank line (only used to word an error)."""
    seen = -1
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                seen += 1
                if seen == query_index:
                    return lineno
    return query_index + 1


def concat_outcomes(parts: Sequence[OutcomeDataset]) -> OutcomeDataset:
    """The queries of several datasets over the same models, one after the other (columns follow the first)."""
    if not parts:
        raise UserError("nothing to concatenate")
    models = parts[0].models
    aligned = [p.select_models(models) for p in parts]
    return OutcomeDataset(
        ids=[i for p in aligned for i in p.ids], prompts=[q for p in aligned for q in p.prompts], models=list(models),
        quality=np.vstack([p.quality for p in aligned]), cost_usd=np.vstack([p.cost_usd for p in aligned]),
        responses={m: [r for p in aligned for r in p.responses.get(m, [None] * len(p))] for m in models
                   if any(m in p.responses for p in aligned)})
