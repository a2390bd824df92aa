"""`gateway.yaml`: what the gateway listens on, which upstreams it may call, how it routes and who may spend what.

    listen: {host: 127.0.0.1, port: 8080}
    admin_key_env: GATEWAY_ADMIN_KEY            # /metrics and /v1/spend need it
    upstreams:
      - {name: small, base_url: http://127.0.0.1:9001/v1, model: gpt-4o-mini, rpm: 600}
      - {name: large, base_url: http://127.0.0.1:9002/v1, model: gpt-4o, timeout_s: 60}
      - {name: claude, provider: anthropic, base_url: https://api.anthropic.com, model: claude-haiku-4-5,
         api_key_env: ANTHROPIC_API_KEY}
    routes:
      auto: {router: ./router, knob: 0.5}        # a router fitted by `truecost route fit`
      short-long: {length_router: {threshold_chars: 400}, models: [small, large]}
      cheap-first: {models: [small, large], cascade: {min_chars: 20}}
    keys:
      - {name: team-a, key_env: TEAM_A_KEY, team: research, budget_usd: 25, budget_period: monthly, rpm: 60}
    budgets:
      - {scope: team, name: research, usd: 100, period: monthly}
    cache: {enabled: true, ttl_s: 600}
    redis_url: redis://127.0.0.1:6379/0          # a fleet of gateways shares budgets, limits and the cache
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from truecost.errors import UserError, existing_file
from truecost.estimate.settings import DEPRECATED_PRICE_NAMES, TokenPriceSetting

KNOB_HEADER = "X-Truecost-Knob"
"""Request header that overrides a route's knob for one request (a float, the router's λ)."""
USER_HEADER = "X-Truecost-User"
"""Request header naming the end user, when the body has no `user` field."""
TAGS_HEADER = "X-Truecost-Tags"
"""Request header with comma-separated tags (spend and budgets by tag); `metadata.tags` in the body also works."""
CACHE_HEADER = "X-Truecost-Cache"
"""Request header: `off` skips the response cache for this request (as does `Cache-Control: no-cache`)."""

Period = Literal["daily", "weekly", "monthly", "lifetime"]
Provider = Literal["openai", "azure", "anthropic"]
_PRICE_FIELDS = (*TokenPriceSetting.model_fields, *DEPRECATED_PRICE_NAMES)


class _Strict(BaseModel):
    """Unknown keys are errors, so a typo in gateway.yaml never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _secret(literal: str | None, env: str | None) -> str | None:
    """A secret given in the file, else read from the named environment variable."""
    return literal or (os.environ.get(env) if env else None) or None


class ListenSettings(_Strict):
    """Where the gateway accepts requests."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class UpstreamSettings(_Strict):
    """One model server the gateway may forward to: OpenAI-compatible (vLLM, llama.cpp, Ollama, OpenAI), Azure
    OpenAI (`base_url` is the resource endpoint, `model` the deployment, `api_version` required) or Anthropic."""

    name: str = Field(min_length=1)
    base_url: str
    provider: Provider = "openai"
    model: str | None = None  # the model id (Azure: deployment) sent upstream; defaults to `name`
    api_version: str | None = None  # Azure's api-version query; Anthropic's anthropic-version header
    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable, so it stays out of the file
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    # A stream that sends no event within this many seconds is fallen back from (default: timeout_s).
    first_event_timeout_s: float | None = Field(None, gt=0)
    # Per-1M-token prices override the price catalogue (e.g. a self-hosted model's own unit cost); written flat
    # (input_usd_per_1m: 1.0, ...) or as `price: {...}`.
    price: TokenPriceSetting | None = None
    tokenizer: Path | None = None  # a local tokenizer.json (or a folder holding one) to count tokens without usage
    rpm: int | None = Field(None, ge=1)  # requests per minute this upstream may receive (then: next candidate)
    tpm: int | None = Field(None, ge=1)  # tokens per minute

    @model_validator(mode="before")
    @classmethod
    def _gather_price(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(k in data for k in _PRICE_FIELDS):
            return data
        out = {k: v for k, v in data.items() if k not in _PRICE_FIELDS}
        flat = {k: v for k, v in data.items() if k in _PRICE_FIELDS}
        if "price" in data:
            raise ValueError(f"give prices either flat or under price:, not both ({', '.join(flat)})")
        out["price"] = flat
        return out

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _azure_version(self) -> UpstreamSettings:
        if self.provider == "azure" and not self.api_version:
            raise ValueError("an azure upstream needs api_version (e.g. 2024-10-21)")
        return self

    @property
    def upstream_model(self) -> str:
        """The model id the upstream expects in the request body."""
        return self.model or self.name

    def resolved_api_key(self) -> str | None:
        """The key to send upstream: the literal one, else the environment variable's value."""
        return _secret(self.api_key, self.api_key_env)


class LengthRouterSettings(_Strict):
    """The built-in baseline router: prompts longer than the threshold go to the last (strongest) model."""

    threshold_chars: int = Field(400, ge=1)


class CascadeSettings(_Strict):
    """Call the route's first model; escalate to the next when its answer fails every check given here.

    `verifier: true` asks the route's router (a `cascade` router fitted by `truecost route fit`) whether to
    escalate. Streamed requests skip the cascade (an answer must be whole to be checked).
    """

    min_chars: int | None = Field(None, ge=0)  # shorter answers escalate
    max_chars: int | None = Field(None, ge=1)  # longer answers escalate (rambling)
    pattern: str | None = None  # the answer must match this regular expression (re.search)
    json_object: bool = False  # the answer must parse as a JSON object
    min_mean_logprob: float | None = Field(None, le=0)  # when the upstream returns logprobs
    verifier: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class RouteSettings(_Strict):
    """A model name clients may ask for that the gateway resolves per request.

    With `router` (a directory written by `truecost route fit`) or `length_router`, each request is routed by
    the router and `knob`; with only `models`, the first model serves and the others are fallbacks in order.
    """

    router: Path | None = None
    length_router: LengthRouterSettings | None = None
    models: list[str] | None = None
    knob: float = Field(0.5, ge=0)  # λ: larger weighs cost more (see truecost.route)
    # Two-model routers: give the share of calls the strong model should get instead of a knob; the router
    # turns it into a knob calibrated on its training prompts.
    strong_share: float | None = Field(None, ge=0, le=1)
    fallback: bool = True  # on upstream error or timeout, try the route's next model
    cache_ttl_s: float | None = Field(None, ge=0)  # this route's cache lifetime (0: never cache it)
    cascade: CascadeSettings | None = None

    @model_validator(mode="after")
    def _one_way(self) -> RouteSettings:
        if self.router is not None and self.length_router is not None:
            raise ValueError("give either router or length_router, not both")
        if self.router is None and not self.models:
            raise ValueError("a route needs a router or a non-empty models list")
        if self.strong_share is not None and "knob" in self.model_fields_set:
            raise ValueError("give either knob or strong_share, not both")
        if self.length_router is not None and self.models is not None and len(self.models) < 2:
            raise ValueError("length_router needs at least two models (cheap first, strong last)")
        if self.cascade is not None and self.cascade.verifier and self.router is None:
            raise ValueError("cascade.verifier needs a fitted cascade router (router: DIR)")
        return self


class KeySettings(_Strict):
    """One API key clients may present: its team, budget and rate limits."""

    name: str = Field(min_length=1)  # what the ledger records; the key itself is never stored
    key: str | None = None
    key_env: str | None = None
    team: str | None = None
    budget_usd: float | None = Field(None, ge=0)
    budget_period: Period = "lifetime"
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _has_key(self) -> KeySettings:
        if not self.key and not self.key_env:
            raise ValueError("give key or key_env")
        return self

    def resolved_key(self) -> str | None:
        """The secret clients send as `Authorization: Bearer ...`."""
        return _secret(self.key, self.key_env)


class BudgetSettings(_Strict):
    """Dollars one key, team, user or tag may spend per calendar period (UTC; weeks start on Monday).

    `name: "*"` gives every user (or tag, team, key) its own budget of that size.
    """

    scope: Literal["key", "team", "user", "tag"]
    name: str = Field(min_length=1)
    usd: float = Field(ge=0)
    period: Period = "monthly"


class SemanticCacheSettings(_Strict):
    """Serve a cached answer to a prompt whose embedding is this close (cosine; default 0.90) to a cached one's,
    that writes the same numbers and, with `near_miss_guard`, is not the same words but for a short swap
    ("Celsius to Fahrenheit" / "Fahrenheit to Celsius"); prompts are embedded with transformer MiniLM (the route's
    router embedder when it is one). Some served answers are still wrong: see docs/gateway.md for how many."""

    threshold: float | None = Field(None, gt=0, le=1)
    max_entries: int = Field(10_000, ge=1)
    near_miss_guard: bool = True


class CacheSettings(_Strict):
    """The response cache: exact match on the normalised request, in memory (or Redis, given `redis_url`)."""

    enabled: bool = False
    ttl_s: float = Field(600.0, gt=0)
    max_entries: int = Field(10_000, ge=1)  # in-memory store: least recently used go first
    shared_across_keys: bool = False  # by default one key never sees another key's cached answers
    backend: Literal["memory", "redis"] | None = None  # default: redis when redis_url is set, else memory
    semantic: SemanticCacheSettings | None = None


class RetrySettings(_Strict):
    """Retries of the last candidate upstream (earlier ones fall back to the next at once): exponential backoff
    with full jitter."""

    max_retries: int = Field(1, ge=0, le=10)
    backoff_base_s: float = Field(0.1, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)


class BreakerSettings(_Strict):
    """A per-upstream circuit breaker: after `failures` failed calls in a row the upstream cools down for
    `cooldown_s`, then one probe request decides whether it is back."""

    failures: int = Field(5, ge=1)
    cooldown_s: float = Field(30.0, gt=0)


class GatewaySettings(_Strict):
    """The whole gateway.yaml."""

    listen: ListenSettings = Field(default_factory=ListenSettings)
    upstreams: list[UpstreamSettings] = Field(min_length=1)
    routes: dict[str, RouteSettings] = Field(default_factory=dict)
    keys: list[KeySettings] = Field(default_factory=list)
    budgets: list[BudgetSettings] = Field(default_factory=list)
    admin_key: str | None = None  # needed for /metrics and /v1/spend; without one they answer 401
    admin_key_env: str | None = None
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)  # larger request bodies get 413 before being read
    # Budgets reserve a request's worst case: its prompt plus max_tokens, or this many when it gives none.
    default_max_tokens: int = Field(4096, ge=1)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    redis_url: str | None = None  # shared state for several gateway processes: budgets, rate limits, cache
    log_text: bool = False  # store prompts and outputs in the ledger (the monitor reads prompts from there)
    ledger: str | None = None  # ledger URL; default: the one `truecost` uses
    name: str = "gateway"  # the serve run's name in the ledger

    @model_validator(mode="after")
    def _names_resolve(self) -> GatewaySettings:
        names = [u.name for u in self.upstreams]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"upstream names must be unique (repeated: {', '.join(duplicates)})")
        clash = sorted(set(names) & set(self.routes))
        if clash:
            raise ValueError(f"route names must differ from upstream names (both: {', '.join(clash)})")
        for route_name, route in self.routes.items():
            unknown = [m for m in route.models or [] if m not in names]
            if unknown:
                raise ValueError(f"routes.{route_name}.models: no upstream named {', '.join(unknown)}")
        key_names = [k.name for k in self.keys]
        if len(set(key_names)) != len(key_names):
            raise ValueError("key names must be unique")
        return self

    def upstream(self, name: str) -> UpstreamSettings:
        """The upstream called `name`."""
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        raise KeyError(name)

    def resolved_admin_key(self) -> str | None:
        """The secret /metrics and /v1/spend require."""
        return _secret(self.admin_key, self.admin_key_env)

    def all_budgets(self) -> list[BudgetSettings]:
        """The `budgets` list plus each key's own `budget_usd`."""
        own = [BudgetSettings(scope="key", name=k.name, usd=k.budget_usd, period=k.budget_period)
               for k in self.keys if k.budget_usd is not None]
        return [*own, *self.budgets]


def parse_gateway_settings(data: Any, source: str = "gateway config") -> GatewaySettings:
    """Validate a parsed gateway.yaml; a mistake becomes one UserError line that names the field."""
    from truecost.config import describe_validation_error

    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return GatewaySettings.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, source)) from exc


def load_gateway_settings(path: str | Path) -> GatewaySettings:
    """Read and validate gateway.yaml; relative router and tokenizer paths are taken from the file's folder."""
    import yaml

    path = existing_file(path, "gateway config")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not valid YAML ({first})") from exc
    settings = parse_gateway_settings(data, str(path))
    for route in settings.routes.values():
        if route.router is not None and not route.router.is_absolute():
            route.router = path.parent / route.router
    for upstream in settings.upstreams:
        if upstream.tokenizer is not None and not upstream.tokenizer.is_absolute():
            upstream.tokenizer = path.parent / upstream.tokenizer
    return settings
