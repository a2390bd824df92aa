"""Routing outcomes: what each model scored and cost on each query (the data every router learns from).

JSONL, one query a line: `{"id": str, "prompt": str, "group": str?, "outcomes": {"<model>": {"quality": 0..1,
"cost": USD}}}`. `cost` may be absent; it then comes from per-token prices (`[route.prices."<model>"]` in
truecost.toml, else `truecost.estimate.model_token_price`). `"quality": null` marks a missing outcome (the model
was not run, or its answer was not graded): it is kept as missing (NaN), counted, and skipped by fitting and
scoring. An outcome may also carry `"response"` (the model's answer), which a cascade's checker reads. `group`
(an MMLU subject, a RouterBench task) lets evaluation hold whole groups out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from truecost.config import Config, describe_validation_error
from truecost.errors import UserError, existing_file
from truecost.estimate.settings import TokenPriceSetting


class RouteSettings(BaseModel):
    """The `[route]` section of truecost.toml."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    prices: dict[str, TokenPriceSetting] = Field(default_factory=dict)
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
    quality: float | None = Field(..., ge=0.0, le=1.0)  # None: a missing outcome
    cost: float | None = Field(None, ge=0.0)
    response: str | None = None


class _QueryLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    prompt: str
    group: str | None = None
    outcomes: dict[str, _OutcomeLine] = Field(min_length=1)


@dataclass
class OutcomeDataset:
    """Outcomes as arrays: `quality[i, j]` and `cost_usd[i, j]` are query i's score and price on `models[j]`.

    A missing outcome is NaN in `quality` (and in `cost_usd` when no price was known). `groups` names each
    query's group (subject, task) where the data says it.
    """

    ids: list[str]
    prompts: list[str]
    models: list[str]
    quality: np.ndarray
    cost_usd: np.ndarray
    responses: dict[str, list[str | None]] = field(default_factory=dict)
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if self.quality.shape != (n, m) or self.cost_usd.shape != (n, m) or len(self.ids) != n:
            raise ValueError(f"outcome arrays must be {(n, m)}; got {self.quality.shape} and {self.cost_usd.shape}")
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"need one group per query: {len(self.groups)} groups for {n} queries")

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def known(self) -> np.ndarray:
        """Boolean [n_queries, n_models]: True where the outcome is known (not missing)."""
        return ~np.isnan(self.quality)

    def missing_by_model(self) -> dict[str, int]:
        """How many outcomes each model is missing (only models missing at least one)."""
        counts = (~self.known).sum(axis=0)
        return {m: int(c) for m, c in zip(self.models, counts, strict=True) if c}

    def complete(self) -> OutcomeDataset:
        """Only the queries whose every outcome is known (what a router's choice can be scored on)."""
        return self.subset(np.flatnonzero(self.known.all(axis=1)))

    def group_labels(self) -> list[str]:
        """Each query's group: `groups` when given, else the id up to its last `/` (RouteLLM ids are
        `<subject file>/<line>`), else the id up to its first `.` (RouterBench ids are `<task>.<split>.<n>`)."""
        if self.groups is not None:
            return list(self.groups)
        return [i.rsplit("/", 1)[0] if "/" in i else i.split(".", 1)[0] for i in self.ids]

    def subset(self, rows: Sequence[int] | np.ndarray) -> OutcomeDataset:
        """The queries at `rows`, in that order."""
        idx = np.asarray(rows, dtype=int)
        return OutcomeDataset(
            ids=[self.ids[i] for i in idx], prompts=[self.prompts[i] for i in idx], models=list(self.models),
            quality=self.quality[idx], cost_usd=self.cost_usd[idx],
            responses={m: [r[i] for i in idx] for m, r in self.responses.items()},
            groups=None if self.groups is None else [self.groups[i] for i in idx])

    def select_models(self, models: Sequence[str]) -> OutcomeDataset:
        """The same queries restricted to `models` (in that order)."""
        missing = [m for m in models if m not in self.models]
        if missing:
            raise UserError(f"model(s) not in the data: {', '.join(missing)} (have: {', '.join(self.models)})")
        cols = [self.models.index(m) for m in models]
        return OutcomeDataset(ids=list(self.ids), prompts=list(self.prompts), models=list(models),
                              quality=self.quality[:, cols], cost_usd=self.cost_usd[:, cols],
                              responses={m: r for m, r in self.responses.items() if m in models},
                              groups=None if self.groups is None else list(self.groups))

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
        """One JSON-ready dict per query, in the file format (a missing outcome as `"quality": null`)."""
        for i in range(len(self)):
            outcomes: dict[str, dict[str, Any]] = {}
            for j, model in enumerate(self.models):
                quality, cost = float(self.quality[i, j]), float(self.cost_usd[i, j])
                entry: dict[str, Any] = {"quality": None if math.isnan(quality) else quality}
                if not math.isnan(cost):
                    entry["cost"] = cost
                response = self.responses.get(model, [None] * len(self))[i]
                if response is not None:
                    entry["response"] = response
                outcomes[model] = entry
            record: dict[str, Any] = {"id": self.ids[i], "prompt": self.prompts[i]}
            if self.groups is not None:
                record["group"] = self.groups[i]
            yield {**record, "outcomes": outcomes}


def estimate_cost_usd(model: str, prompt: str, config: Config | None = None) -> float | None:
    """Dollars for one request from per-token prices: `[route.prices]` first, then the estimate catalogue.

    Token counts are estimated (prompt characters / `chars_per_token`, a fixed answer length); the dollars come
    from `truecost.estimate` like every other price in truecost.
    """
    from truecost.estimate.costing import model_token_price
    from truecost.estimate.pricing import token_cost_usd

    config = config if config is not None else Config()
    settings = route_settings(config)
    prompt_tokens = max(1, math.ceil(len(prompt) / settings.chars_per_token))
    completion_tokens = settings.completion_tokens
    if completion_tokens is None:
        completion_tokens = config.target.output_tokens
    own = settings.prices.get(model)
    price = own.to_price() if own is not None else model_token_price(model, config)
    return None if price is None else token_cost_usd(price, prompt_tokens, completion_tokens)


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
    path = existing_file(path, "outcomes file")
    queries = list(_parse_lines(path))
    if not queries:
        raise UserError(f"{path}: no queries in the file")
    models = list(queries[0].outcomes)
    if len(models) < 2:
        raise UserError(f"{path}: routing needs at least two models, found {models}")
    quality = np.array([[np.nan if q.outcomes[m].quality is None else q.outcomes[m].quality for m in models]
                        for q in queries], dtype=float)
    if np.isnan(quality).all(axis=0).any():
        empty = [m for m, col in zip(models, np.isnan(quality).all(axis=0), strict=True) if col]
        raise UserError(f"{path}: every outcome of {', '.join(empty)} is missing; drop the model or add outcomes")
    cost = _costs(path, queries, models, config)
    responses = {m: [q.outcomes[m].response for q in queries] for m in models
                 if any(q.outcomes[m].response is not None for q in queries)}
    groups = [q.group or "" for q in queries] if any(q.group is not None for q in queries) else None
    return OutcomeDataset(ids=[q.id for q in queries], prompts=[q.prompt for q in queries], models=models,
                          quality=quality, cost_usd=cost, responses=responses, groups=groups)


def _parse_lines(path: Path) -> Iterator[_QueryLine]:
    """Validated queries of the file, checking every line names the first line's models."""
    models: set[str] | None = None
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                query = _QueryLine.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}: not valid JSON ({exc.msg})") from exc
            except ValidationError as exc:
                raise UserError(describe_validation_error(exc, where)) from exc
            if models is None:
                models = set(query.outcomes)
            elif set(query.outcomes) != models:
                raise UserError(f"{where}: outcomes: models {sorted(query.outcomes)} differ from the first line's "
                                f"{sorted(models)}; every query needs an outcome for every model (a missing one "
                                'as {"quality": null})')
            yield query


def _costs(path: Path, queries: list[_QueryLine], models: list[str], config: Config | None) -> np.ndarray:
    """Given costs, else priced from tokens; NaN for a missing outcome that no price covers."""
    cost = np.empty((len(queries), len(models)))
    for i, query in enumerate(queries):
        for j, model in enumerate(models):
            outcome = query.outcomes[model]
            given = outcome.cost if outcome.cost is not None else estimate_cost_usd(model, query.prompt, config)
            if given is None and outcome.quality is not None:
                raise UserError(f"{path}:{_line_of(path, i)}: outcomes.{model}.cost: missing, and no price is "
                                f"known for {model!r}; add it to the file or set [route.prices.\"{model}\"] "
                                "input_usd_per_1m/output_usd_per_1m in truecost.toml")
            cost[i, j] = np.nan if given is None else given
    return cost


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
                   if any(m in p.responses for p in aligned)},
        groups=None if all(p.groups is None for p in aligned) else [g for p in aligned for g in p.group_labels()])
