"""`gateway.yaml`: what the gateway listens on, which upstreams it may call, how it routes and who may spend what.

    listen: {host: 127.0.0.1, port: 8080}
    upstreams:
      - {name: small, base_url: http://127.0.0.1:9001/v1, model: gpt-4o-mini}
      - {name: large, base_url: http://127.0.0.1:9002/v1, model: gpt-4o, timeout_s: 60}
    routes:
      auto: {router: ./router, knob: 0.5}        # a router fitted by `truecost route fit`
      short-long: {length_router: {threshold_chars: 400}, models: [small, large]}
    keys:
      - {name: team-a, key_env: TEAM_A_KEY, budget_usd: 25}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from truecost.errors import UserError

KNOB_HEADER = "X-Truecost-Knob"
"""Request header that overrides a route's knob for one request (a float, the router's λ)."""


class _Strict(BaseModel):
    """Unknown keys are errors, so a typo in gateway.yaml never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ListenSettings(_Strict):
    """Where the gateway accepts requests."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class UpstreamSettings(_Strict):
    """One OpenAI-compatible endpoint the gateway may forward to."""

    name: str = Field(min_length=1)
    base_url: str
    model: str | None = None  # the model id sent upstream; defaults to `name`
    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable, so it stays out of the file
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    # Per-1M-token prices override the estimate catalogue (e.g. a self-hosted model's own unit cost).
    prompt_usd_per_1m_tokens: float | None = Field(None, ge=0)
    completion_usd_per_1m_tokens: float | None = Field(None, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _both_prices(self) -> UpstreamSettings:
        if (self.prompt_usd_per_1m_tokens is None) != (self.completion_usd_per_1m_tokens is None):
            raise ValueError("set both prompt_usd_per_1m_tokens and completion_usd_per_1m_tokens, or neither")
        return self

    @property
    def upstream_model(self) -> str:
        """The model id the upstream expects in the request body."""
        return self.model or self.name

    def resolved_api_key(self) -> str | None:
        """The key to send upstream: the literal one, else the environment variable's value."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None


class LengthRouterSettings(_Strict):
    """The built-in baseline router: prompts longer than the threshold go to the last (strongest) model."""

    threshold_chars: int = Field(400, ge=1)


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
        return self


class KeySettings(_Strict):
    """One API key clients may present, with the most it may spend in USD (none: unlimited)."""

    name: str = Field(min_length=1)  # what the ledger records; the key itself is never stored
    key: str | None = None
    key_env: str | None = None
    budget_usd: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _has_key(self) -> KeySettings:
        if not self.key and not self.key_env:
            raise ValueError("give key or key_env")
        return self

    def resolved_key(self) -> str | None:
        """The secret clients send as `Authorization: Bearer ...`."""
        return self.key or (os.environ.get(self.key_env) if self.key_env else None) or None


class GatewaySettings(_Strict):
    """The whole gateway.yaml."""

    listen: ListenSettings = Field(default_factory=ListenSettings)
    upstreams: list[UpstreamSettings] = Field(min_length=1)
    routes: dict[str, RouteSettings] = Field(default_factory=dict)
    keys: list[KeySettings] = Field(default_factory=list)
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
    """Read and validate gateway.yaml; relative router paths are taken from the file's folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"gateway config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not valid YAML ({first})") from exc
    settings = parse_gateway_settings(data, str(path))
    for route in settings.routes.values():
        if route.router is not None and not route.router.is_absolute():
            route.router = path.parent / route.router
    return settings
