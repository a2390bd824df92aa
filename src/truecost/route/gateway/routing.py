"""How the gateway turns a requested model name into an ordered list of upstreams to try.

Any object with `models: list[str]` and `route(prompt, knob) -> decision` (a decision having `.model` and
`.score`) is a router here, so a router fitted by `truecost route fit` and the built-in `LengthRouter` are
interchangeable.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from truecost.errors import UserError
from truecost.route.gateway.settings import CascadeSettings, GatewaySettings, RouteSettings


class Decision(Protocol):
    """What a router returns: the model to call and how sure it is."""

    model: str
    score: float


@runtime_checkable
class Router(Protocol):
    """The routing contract the gateway needs (a subset of truecost.route's routers)."""

    models: list[str]

    def route(self, prompt: str, knob: float) -> Any:
        """Pick a model for `prompt`; a larger knob weighs cost more."""
        ...


@dataclass(frozen=True)
class LengthDecision:
    """The built-in router's choice; same fields as truecost.route's RouteDecision."""

    model: str
    score: float
    expected_quality: dict[str, float] = field(default_factory=dict)


class LengthRouter:
    """Baseline: a prompt's need for the strong model grows with its length.

    score = len / (len + threshold_chars), in [0, 1); the last (strong) model is chosen when score > knob, so
    knob 0.5 sends prompts longer than the threshold to it, a knob near 1 keeps almost all on the first (cheap)
    model and a knob of 0 or below sends all to the strong one.
    """

    def __init__(self, models: list[str], threshold_chars: int = 400) -> None:
        if len(models) < 2:
            raise ValueError("LengthRouter needs at least two models (cheap first, strong last)")
        self.models = list(models)
        self.threshold_chars = threshold_chars

    fast_decisions = True  # a division: decided inline, as a static-embedding router is (see `Router`)

    def route(self, prompt: str, knob: float) -> LengthDecision:
        """Cheap model unless the prompt is long enough for the knob."""
        length = len(prompt)
        score = length / (length + self.threshold_chars)
        model = self.models[-1] if score > knob else self.models[0]
        return LengthDecision(model=model, score=score,
                              expected_quality={self.models[0]: 1.0 - score, self.models[-1]: score})


@dataclass
class Route:
    """A resolved route: its router (None: fixed order), the models it may use in fallback order, its knob."""

    name: str
    models: list[str]
    router: Any | None = None
    knob: float = 0.5
    fallback: bool = True
    cascade: CascadeSettings | None = None
    cache_ttl_s: float | None = None

    def order(self, chosen: str | None) -> list[str]:
        """The upstreams to try: the chosen model (None: the first listed), then, with fallback, the others."""
        first = chosen if chosen is not None else self.models[0]
        if not self.fallback:
            return [first]
        return [first, *(m for m in self.models if m != first)]

    def plan(self, prompt: str, knob: float | None) -> tuple[list[str], float | None]:
        """The upstreams to try in order, and the router's score (None without a router)."""
        if self.router is None:
            return self.order(None), None
        decision = self.router.route(prompt, self.knob if knob is None else knob)
        return self.order(str(decision.model)), float(decision.score)


class RouterBatcher:
    """Routes concurrent requests of one route together: while the router works on one batch, the next gathers.

    A router with `route_many(prompts, knob) -> decisions` embeds the whole batch in one call, which costs far
    less per prompt than one call each; a router without it is called prompt by prompt, still off the event
    loop. `limiter` keeps router calls from running in parallel, since each already uses every core.
    """

    def __init__(self, router: Any, limiter: Any, max_batch: int = 64) -> None:
        self.router = router
        self.limiter = limiter
        self.max_batch = max_batch
        self.calls = 0  # router calls made, for tests and metrics
        self._pending: list[tuple[str, float, float, asyncio.Future[tuple[Any, float]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def decide(self, prompt: str, knob: float) -> tuple[Any, float]:
        """The router's decision for `prompt` at `knob`, and the milliseconds it waited before the router took it.

        No batching window: a request that finds the router idle starts at once, alone; only requests that
        arrive while a batch runs wait, and they go together in the next one.
        """
        future: asyncio.Future[tuple[Any, float]] = asyncio.get_running_loop().create_future()
        self._pending.append((prompt, knob, time.perf_counter(), future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        import anyio

        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            try:
                started, decisions = await anyio.to_thread.run_sync(
                    self._decide_batch, [(p, k) for p, k, _, _ in batch], limiter=self.limiter)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which falls back
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, arrived, future), decision in zip(batch, decisions, strict=True):
                if not future.done():
                    future.set_result((decision, (started - arrived) * 1000))

    def _decide_batch(self, requests: list[tuple[str, float]]) -> tuple[float, list[Any]]:
        started = time.perf_counter()
        route_many = getattr(self.router, "route_many", None)
        if route_many is None:
            self.calls += len(requests)
            return started, [self.router.route(prompt, knob) for prompt, knob in requests]
        decisions: list[Any] = [None] * len(requests)
        for knob in dict.fromkeys(k for _, k in requests):  # one call per distinct knob, in arrival order
            indices = [i for i, (_, k) in enumerate(requests) if k == knob]
            self.calls += 1
            for i, decision in zip(indices, route_many([requests[i][0] for i in indices], knob), strict=True):
                decisions[i] = decision
        return started, decisions


def _load_fitted_router(path: Any) -> Any:
    """A router saved by `truecost route fit`, through truecost.route's loader."""
    try:
        from truecost.route import load_router
    except ImportError as exc:
        raise UserError(f"router {path}: this truecost has no fitted-router loader (truecost.route.load_router)"
                        ) from exc
    return load_router(path)


def build_routes(settings: GatewaySettings, routers: dict[str, Any] | None = None) -> dict[str, Route]:
    """Resolve every configured route; `routers` supplies ready router objects by route name (tests, Python API).

    Without any configured route, `auto` serves the upstreams in their listed order with fallback.
    """
    routers = dict(routers or {})
    upstream_names = [u.name for u in settings.upstreams]
    configured = dict(settings.routes)
    for name in routers:
        configured.setdefault(name, RouteSettings(models=upstream_names))
    if not configured:
        configured["auto"] = RouteSettings(models=upstream_names)
    routes: dict[str, Route] = {}
    for name, rs in configured.items():
        router = routers.get(name)
        if router is None and rs.router is not None:
            router = _load_fitted_router(rs.router)
        if router is None and rs.length_router is not None:
            router = LengthRouter(rs.models or upstream_names, rs.length_router.threshold_chars)
        if router is not None and not isinstance(router, Router):
            raise UserError(f"routes.{name}: the router has no models list and route(prompt, knob) method")
        models = list(rs.models) if rs.models else list(router.models if router is not None else upstream_names)
        if router is not None:
            missing = [m for m in router.models if m not in upstream_names]
            if missing:
                raise UserError(f"routes.{name}: the router picks {', '.join(missing)}, which no upstream is named; "
                                "add upstreams with those names")
            models = [m for m in models if m in router.models] or list(router.models)
        knob = rs.knob
        if rs.strong_share is not None:
            if router is None or not hasattr(router, "knob_for_strong_share"):
                raise UserError(f"routes.{name}.strong_share needs a fitted two-model router (router: DIR)")
            knob = float(router.knob_for_strong_share(rs.strong_share))
        if rs.cascade is not None and rs.cascade.verifier and not hasattr(router, "escalate"):
            raise UserError(f"routes.{name}.cascade.verifier needs a cascade router (truecost route fit cascade)")
        routes[name] = Route(name=name, models=models, router=router, knob=knob, fallback=rs.fallback,
                             cascade=rs.cascade, cache_ttl_s=rs.cache_ttl_s)
    return routes
