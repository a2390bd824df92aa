"""What one running gateway holds and does per request, whatever wire format the client speaks.

A request becomes a `Call`: who it is for, what it asks, the upstreams to try. The gateway checks the caller's
rate limits, looks in the cache, reserves the worst case on every budget, then tries the candidates (retries,
circuit breakers, per-upstream limits, fallback), prices the answer through `truecost.estimate`, settles the
budgets and writes one ledger row. The endpoints in `app.py` turn the answer into OpenAI's or Anthropic's shape.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from starlette.responses import JSONResponse

from truecost.config import Config
from truecost.ledger import Ledger, RequestRecord
from truecost.route.gateway import cache as caching
from truecost.route.gateway.budget import Budgets, Caller, Reservation, make_store
from truecost.route.gateway.limits import MemoryLimiter, RateLimits, RedisLimiter
from truecost.route.gateway.metrics import GatewayMetrics
from truecost.route.gateway.openai_api import error_response, rate_limited
from truecost.route.gateway.prices import UpstreamPrices
from truecost.route.gateway.recorder import LedgerRecorder
from truecost.route.gateway.resilience import CircuitBreakers, backoff_s
from truecost.route.gateway.routing import Route, RouterBatcher, build_routes
from truecost.route.gateway.settings import GatewaySettings, KeySettings
from truecost.route.gateway.tokens import TokenCounter, Usage
from truecost.route.gateway.upstream import UpstreamFailure, UpstreamPool

T = TypeVar("T")
Clock = Callable[[], datetime]


@dataclass
class Call:
    """One request on its way through the gateway."""

    endpoint: str  # "chat" or "embeddings"
    payload: dict[str, Any]  # as the client sent it, in OpenAI's shape
    caller: Caller
    record: RequestRecord
    started: float
    prompt: list[str]  # the text of the prompt, for counting tokens
    completion_limit: int | None = None
    route: Route | None = None
    candidates: list[str] = field(default_factory=list)
    estimated_tokens: int = 0
    reservation: Reservation | None = None
    cache_key: str | None = None
    cache_variant: str = ""  # what beside the request decides the answer (a routed route's knob)
    semantic: tuple[str, Any, tuple[str, ...]] | None = None  # (bucket, vector, words) to index the answer under
    failures: list[UpstreamFailure] = field(default_factory=list)
    routing_text: str = ""  # what the router judges (the last user message)
    knob: float | None = None  # from the X-Truecost-Knob header (None: the route's own)

    @property
    def body(self) -> dict[str, Any]:
        """What goes upstream: the request without its model (each upstream gets its own id)."""
        return {k: v for k, v in self.payload.items() if k != "model"}


class Gateway:
    """Everything one running gateway holds: routes, upstream clients, budgets, limits, cache, ledger, metrics."""

    def __init__(self, settings: GatewaySettings, *, routers: dict[str, Any] | None = None,
                 ledger: Ledger | None = None, run_id: str | None = None, config: Config | None = None,
                 clock: Clock | None = None, redis: Any = None) -> None:
        self.settings = settings
        self.routes: dict[str, Route] = build_routes(settings, routers)
        self.ledger = ledger
        self.run_id = run_id
        self.config = config if config is not None else Config()  # None: the defaults, never ./truecost.toml
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.redis = redis
        self.prices = UpstreamPrices(settings, self.config)
        self.counters = {u.name: TokenCounter(u.tokenizer) for u in settings.upstreams}
        self.metrics = GatewayMetrics()
        self.breakers = CircuitBreakers(settings.breaker)
        self.budgets: Budgets | None = None
        self.limits: RateLimits | None = None
        self.cache: caching.CacheStore | None = None
        self.semantic: caching.SemanticIndex | None = None
        self.pool: UpstreamPool | None = None
        self.router_limiter: anyio.CapacityLimiter | None = None
        self.batchers: dict[str, RouterBatcher] = {}  # routes whose router runs off the event loop
        # Request ids: a random prefix per gateway and a counter, cheaper than a uuid4 per request.
        self.id_prefix = f"tc-{uuid.uuid4().hex[:12]}"
        self.request_numbers = itertools.count(1)
        self.recorder: LedgerRecorder | None = None
        self.stats: dict[str, float] = {"requests": 0, "ok": 0, "errors": 0, "rejected": 0, "fallbacks": 0,
                                        "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                        "cost_usd": 0.0, "saved_usd": 0.0}

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open upstream connections, Redis and the ledger writer (inside the server's event loop)."""
        if self.redis is None and self.settings.redis_url:
            import redis.asyncio as aioredis

            self.redis = aioredis.from_url(self.settings.redis_url)
        self.budgets = Budgets(self.settings.keys, self.settings.all_budgets(), make_store(self.ledger, self.redis),
                               self.clock)
        self.limits = RateLimits(RedisLimiter(self.redis) if self.redis is not None else MemoryLimiter(),
                                 lambda: self.clock().timestamp())
        cache = self.settings.cache
        if cache.enabled:
            redis_cache = cache.backend == "redis" or (cache.backend is None and self.redis is not None)
            self.cache = (caching.RedisCacheStore(self.redis) if redis_cache
                          else caching.MemoryCacheStore(cache.max_entries))
            if cache.semantic is not None:
                caching.check_semantic_embedder()
                self.semantic = caching.SemanticIndex(cache.semantic.threshold, cache.semantic.max_entries,
                                                      cache.semantic.near_miss_guard)
        self.pool = UpstreamPool(self.settings.upstreams)
        # One router call at a time: embedding is CPU-bound (TRUECOST_ROUTE_THREADS sets its threads), batching
        # costs no more CPU per prompt than one call each, and the embedder's tokenizer is one shared object.
        self.router_limiter = anyio.CapacityLimiter(1)
        # A router that decides in well under a millisecond (the length router, a static-MiniLM router) runs
        # inline: a worker thread's hop and the batch's wait would cost more than the decision.
        self.batchers = {name: RouterBatcher(route.router, self.router_limiter) for name, route in self.routes.items()
                         if route.router is not None and not getattr(route.router, "fast_decisions", False)}
        if self.ledger is not None:
            self.recorder = LedgerRecorder(self.ledger)

    async def stop(self) -> None:
        """Close connections, release what is still reserved and write every queued ledger row."""
        if self.budgets is not None:
            await self.budgets.settle_all()
        if self.pool is not None:
            await self.pool.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.recorder is not None:
            await anyio.to_thread.run_sync(self.recorder.close)

    @property
    def model_names(self) -> list[str]:
        """What clients may put in `model`: every route, then every upstream."""
        return [*self.routes, *(u.name for u in self.settings.upstreams)]

    # -- who is calling -----------------------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> KeySettings | None | JSONResponse:
        """The caller's key (None when the gateway has no keys), or a 401 response."""
        assert self.budgets is not None
        if not self.budgets.required:
            return None
        key = self.budgets.identify(secret)
        if key is None:
            self.metrics.rejected.labels("auth").inc()
            message = "missing API key" if not secret else "invalid API key"
            return error_response(401, f"{message}: send `Authorization: Bearer <key>` with a configured key",
                                  code="invalid_api_key")
        return key

    def authorize_admin(self, secret: str | None) -> JSONResponse | None:
        """None when `secret` is the admin key; else a 401 (also when no admin key is configured)."""
        import hmac

        admin = self.settings.resolved_admin_key()
        if admin and secret and hmac.compare_digest(admin.encode(), secret.encode()):
            return None
        self.metrics.rejected.labels("admin_auth").inc()
        hint = "send `Authorization: Bearer <admin key>`" if admin else \
            "this gateway has no admin key: set admin_key or admin_key_env in gateway.yaml"
        return error_response(401, f"this endpoint needs the admin key: {hint}", code="invalid_api_key")

    def new_record(self, route: str, caller: Caller, stream: bool, prompt: str | None) -> RequestRecord:
        """The ledger row this request will write."""
        return RequestRecord(timestamp=self.clock(), model="", route=route, api_key=caller.key, team=caller.team,
                             user=caller.user, tags=list(caller.tags), run_id=self.run_id,
                             prompt=prompt if self.settings.log_text else None,
                             extra={"request_id": f"{self.id_prefix}-{next(self.request_numbers)}", "stream": stream})

    def reject(self, call: Call, reason: str, response: JSONResponse) -> JSONResponse:
        """Log a refused request (status rejected, cost 0) and pass its response on."""
        self.metrics.rejected.labels(reason).inc()
        call.record.status = "rejected"
        call.record.extra["reason"] = reason
        self.finish(call)
        return response

    # -- before the upstream ------------------------------------------------------------------------------
    async def admit(self, call: Call, key: KeySettings | None) -> JSONResponse | None:
        """The caller's RPM/TPM limits; a 429 with Retry-After when over."""
        assert self.limits is not None
        counter = self.counters[call.candidates[0]] if call.candidates else TokenCounter()
        call.estimated_tokens = counter.prompt_tokens(call.prompt)
        if key is None or (key.rpm is None and key.tpm is None):
            return None
        wait = await self.limits.admit("key", key.name, key.rpm, key.tpm, call.estimated_tokens)
        if wait is None:
            return None
        return self.reject(call, "rate_limit", rate_limited(
            f"API key {key.name!r} is over its rate limit (rpm {key.rpm}, tpm {key.tpm}); retry in {wait:g} s",
            wait, code="rate_limit_exceeded"))

    async def reserve(self, call: Call, models: list[str]) -> JSONResponse | None:
        """Hold the worst case on every budget of the caller; a 429 naming the budget when one would pass."""
        assert self.budgets is not None
        if not self.budgets.budgets:
            return None
        prompt_bound = max(self.counters[m].prompt_bound(call.prompt) for m in models)
        completion = call.completion_limit or self.settings.default_max_tokens
        worst = self.prices.worst_case_usd(models, prompt_bound, completion)
        if call.route is not None and call.route.cascade is not None:
            worst = sum(self.prices.worst_case_usd([m], prompt_bound, completion) for m in models)
        held = await self.budgets.reserve(call.caller, worst)
        if isinstance(held, Reservation):
            call.reservation = held
            call.record.extra["reserved_usd"] = worst
            return None
        return self.reject(call, "budget", error_response(
            429, f"the {held.scope} {held.name!r} has used its {held.period} budget of ${held.limit_usd:g} "
            f"(this request could cost up to ${worst:.6f}); raise the budget in the gateway config or wait for the "
            "period to end", type_="insufficient_quota", code="budget_exceeded"))

    # -- the upstream calls -------------------------------------------------------------------------------
    async def attempt(self, call: Call, do: Callable[[str], Awaitable[T]]) -> tuple[str, T] | None:
        """Try the candidates in order (retries, breakers, upstream limits); the first answer, or None."""
        assert self.limits is not None
        retry = self.settings.retry
        for position, name in enumerate(call.candidates):
            # Another candidate is a fresh chance with no wait, so the same upstream is retried only as the last.
            retries = retry.max_retries if position == len(call.candidates) - 1 else 0
            if not self.breakers.allow(name):
                self.failed(call, UpstreamFailure(name, "breaker", "cooling down after repeated failures"))
                continue
            upstream = self.settings.upstream(name)
            wait = await self.limits.admit("upstream", name, upstream.rpm, upstream.tpm, call.estimated_tokens)
            if wait is not None:
                self.failed(call, UpstreamFailure(name, "rate_limit", "at its rpm/tpm limit", retry_after_s=wait))
                continue
            for tries in itertools.count():
                try:
                    result = await do(name)
                except UpstreamFailure as failure:
                    self.breakers.failure(name)
                    self.failed(call, failure)
                    if not failure.retryable:
                        return None
                    if tries < retries and failure.reason != "timeout" and self.breakers.allow(name):
                        await anyio.sleep(backoff_s(tries, retry, failure.retry_after_s))
                        continue
                    break
                except BaseException:
                    self.breakers.release(name)
                    raise
                self.breakers.success(name)
                self.fell_back(call, name)
                return name, result
        return None

    def failed(self, call: Call, failure: UpstreamFailure) -> None:
        """Note one failed (or skipped) upstream call on the request."""
        call.failures.append(failure)
        self.metrics.upstream_errors.labels(failure.model, failure.reason).inc()
        call.record.extra.setdefault("attempts", []).append(
            {"model": failure.model, "reason": failure.reason, "error": failure.message})

    def fell_back(self, call: Call, model: str) -> None:
        """Count a request that `model` answered after earlier candidates failed."""
        tried = [f.model for f in call.failures if f.model != model]
        if tried:
            call.record.extra["fallback_from"] = tried[0]
            self.metrics.fallbacks.labels(call.record.route, model).inc()
            self.stats["fallbacks"] += 1

    def all_failed(self, call: Call) -> JSONResponse:
        """Every candidate failed or was skipped: the right error in OpenAI's shape; logged."""
        from truecost.route.gateway.errors import failure_response

        failures = call.failures
        call.record.model = failures[-1].model if failures else ""
        call.record.status = "error"
        response = failure_response(failures, self.breakers, self.headers(call.record))
        if response.status_code in (429, 503) and all(f.reason in ("breaker", "rate_limit") for f in failures):
            call.record.status = "rejected"
        self.finish(call)
        return response

    # -- after the upstream -------------------------------------------------------------------------------
    def usage_of(self, call: Call, model: str, usage: dict[str, Any] | None, output: str) -> Usage:
        """Token counts: the upstream's usage, else the model's tokenizer, else the estimate (noted in the row)."""
        if isinstance(usage, dict) and "prompt_tokens" in usage:
            return Usage.from_openai(usage)
        counter = self.counters[model]
        call.record.extra["tokens_counted"] = "tokenizer" if counter.exact else "estimate"
        call.record.extra["tokens_estimated"] = not counter.exact
        prompt = counter.prompt_tokens(call.prompt) if counter.exact else counter.count("".join(call.prompt))
        return Usage(prompt, counter.count(output))

    def priced(self, call: Call, model: str, usage: Usage) -> None:
        """Put model, tokens and cost on the request's row."""
        record = call.record
        record.model = model
        record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        record.cost_usd = self.prices.cost_usd(model, usage)
        record.extra["price_source"] = self.prices.source(model)
        if usage.cached_prompt_tokens:
            record.extra["cached_prompt_tokens"] = usage.cached_prompt_tokens
        if usage.reasoning_tokens:
            record.extra["reasoning_tokens"] = usage.reasoning_tokens

    async def settle(self, call: Call) -> None:
        """Settle budgets and token windows to what the request really used."""
        assert self.budgets is not None and self.limits is not None
        record = call.record
        if call.reservation is not None:
            with anyio.CancelScope(shield=True):
                await self.budgets.settle(call.reservation, record.cost_usd)
        used = record.prompt_tokens + record.completion_tokens
        key = self.budgets.keys.get(call.caller.key)
        if key is not None and record.status != "rejected":
            with anyio.CancelScope(shield=True):
                await self.limits.settle("key", key.name, key.tpm, call.estimated_tokens, used)
        if record.model in self.counters and not record.cache_hit and record.status != "rejected":
            upstream = self.settings.upstream(record.model)
            with anyio.CancelScope(shield=True):
                await self.limits.settle("upstream", upstream.name, upstream.tpm, call.estimated_tokens, used)

    def finish(self, call: Call) -> None:
        """Count a finished request and queue its ledger row (written off the event loop)."""
        record = call.record
        record.latency_ms = (time.perf_counter() - call.started) * 1000
        self.stats["requests"] += 1
        self.stats[{"ok": "ok", "rejected": "rejected"}.get(record.status, "errors")] += 1
        self.stats["prompt_tokens"] += record.prompt_tokens
        self.stats["completion_tokens"] += record.completion_tokens
        self.stats["cost_usd"] += record.cost_usd
        self.stats["saved_usd"] += record.saved_usd
        self.stats["cache_hits"] += int(record.cache_hit)
        m = self.metrics
        m.requests.labels(record.route, record.model, record.status).inc()
        m.latency.labels(record.route).observe(record.latency_ms / 1000)
        if record.status != "rejected":
            m.tokens.labels(record.model, "prompt").inc(record.prompt_tokens)
            m.tokens.labels(record.model, "completion").inc(record.completion_tokens)
            m.cost.labels(record.model).inc(record.cost_usd)
        if record.cache_hit:
            m.cache_hits.labels(record.route).inc()
            m.saved.labels(record.route).inc(record.saved_usd)
        if self.recorder is not None:
            self.recorder.submit(record)

    def headers(self, record: RequestRecord) -> dict[str, str]:
        """The x-truecost-* response headers."""
        headers = {"x-truecost-model": record.model, "x-truecost-route": record.route,
                   "x-truecost-request-id": str(record.extra["request_id"])}
        if record.router_score is not None:
            headers["x-truecost-score"] = f"{record.router_score:.6g}"
        if record.cache_hit:
            headers["x-truecost-cache"] = "hit"
        return headers

    async def route(self, call: Call) -> None:
        """Order a chat request's candidates with its route's router (a cascade tries them in listed order)."""
        route = call.route
        if route is None or call.endpoint != "chat" or route.cascade is not None:
            return
        started = time.perf_counter()
        call.candidates, call.record.router_score, router_error, queued_ms = await self.plan(
            route, call.routing_text, call.knob)
        extra = call.record.extra
        extra["route_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if queued_ms is not None:
            extra["route_queue_ms"] = round(queued_ms, 3)
        extra["knob"] = route.knob if call.knob is None else call.knob
        if router_error:
            extra["router_error"] = router_error

    async def plan(self, route: Route, prompt: str, knob: float | None
                   ) -> tuple[list[str], float | None, str, float | None]:
        """Candidates in order, the router's score, a router error ("" when none) and how long the decision
        waited for the router (None when it ran inline).

        A fitted router may take milliseconds (embeddings), so it runs on a worker thread, batched with the
        requests that arrive meanwhile, unless it says its decisions are fast (`fast_decisions`); if it fails,
        the request still goes out in the route's listed order.
        """
        try:
            batcher = self.batchers.get(route.name)
            if batcher is None:
                candidates, score = route.plan(prompt, knob)
                return candidates, score, "", None
            decision, queued_ms = await batcher.decide(prompt, route.knob if knob is None else knob)
            return route.order(str(decision.model)), float(decision.score), "", queued_ms
        except Exception as exc:  # noqa: BLE001 - a broken router must not take the gateway down
            return route.order(None), None, f"{type(exc).__name__}: {exc}", None


async def aclosing_iter(events: AsyncIterator[T]) -> AsyncIterator[T]:
    """Iterate `events` and close it however the loop ends (so its cleanup runs when a client leaves)."""
    from contextlib import aclosing

    async with aclosing(events) as iterator:  # type: ignore[type-var]
        async for event in iterator:
            yield event
