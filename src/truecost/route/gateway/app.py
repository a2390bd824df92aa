"""The gateway's HTTP app: OpenAI-compatible chat completions routed per request, with fallback, budgets,
a ledger row per request and Prometheus metrics.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from truecost.ledger import RequestRecord
from truecost.route.gateway.budget import Budgets, spent_by_key_usd
from truecost.route.gateway.metrics import GatewayMetrics
from truecost.route.gateway.openai_api import (
    ChatRequest,
    error_response,
    estimate_tokens,
    models_list,
    prompt_chars,
    routing_prompt,
    validation_error_response,
)
from truecost.route.gateway.recorder import LedgerRecorder
from truecost.route.gateway.routing import LengthRouter, Route, RouterBatcher, build_routes
from truecost.route.gateway.settings import KNOB_HEADER, GatewaySettings
from truecost.route.gateway.sse import SSERelay
from truecost.route.gateway.upstream import UpstreamFailure, UpstreamPool, UpstreamStream


class Gateway:
    """Everything one running gateway holds: routes, upstream clients, budgets, the ledger queue, metrics."""

    def __init__(self, settings: GatewaySettings, *, routers: dict[str, Any] | None = None, ledger: Any = None,
                 run_id: str | None = None, config: Any = None) -> None:
        from truecost.config import load_config

        self.settings = settings
        self.routes: dict[str, Route] = build_routes(settings, routers)
        self.ledger = ledger
        self.run_id = run_id
        self.config = config if config is not None else load_config()
        key_names = [k.name for k in settings.keys if k.budget_usd is not None]
        self.budgets = Budgets(settings.keys, spent_by_key_usd(ledger, key_names))
        self.metrics = GatewayMetrics()
        self.pool: UpstreamPool | None = None
        self.router_limiter: anyio.CapacityLimiter | None = None
        self.batchers: dict[str, RouterBatcher] = {}  # routes whose router runs off the event loop
        # Request ids: a random prefix per gateway and a counter, cheaper than a uuid4 per request.
        self.id_prefix = f"tc-{uuid.uuid4().hex[:12]}"
        self.request_numbers = itertools.count(1)
        self.recorder: LedgerRecorder | None = None
        self.stats: dict[str, float] = {"requests": 0, "ok": 0, "errors": 0, "rejected": 0, "fallbacks": 0,
                                        "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open upstream connections and the ledger writer (inside the server's event loop)."""
        self.pool = UpstreamPool(self.settings.upstreams)
        # One router call at a time: embedding prompts is CPU-bound and already uses several cores inside torch,
        # so running many at once only makes every request wait longer.
        self.router_limiter = anyio.CapacityLimiter(1)
        self.batchers = {name: RouterBatcher(route.router, self.router_limiter) for name, route in self.routes.items()
                         if route.router is not None and not isinstance(route.router, LengthRouter)}
        if self.ledger is not None:
            self.recorder = LedgerRecorder(self.ledger)

    async def stop(self) -> None:
        """Close connections and write every queued ledger row."""
        if self.pool is not None:
            await self.pool.aclose()
        if self.recorder is not None:
            await anyio.to_thread.run_sync(self.recorder.close)

    @property
    def model_names(self) -> list[str]:
        """What clients may put in `model`: every route, then every upstream."""
        return [*self.routes, *(u.name for u in self.settings.upstreams)]

    # -- pricing and records ------------------------------------------------------------------------------
    def price_usd(self, model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, str]:
        """Dollars for one request and where the price came from: gateway.yaml, the catalogue, or unknown (0)."""
        from truecost.estimate import token_price_usd

        upstream = self.settings.upstream(model)
        if upstream.prompt_usd_per_1m_tokens is not None and upstream.completion_usd_per_1m_tokens is not None:
            return (prompt_tokens * upstream.prompt_usd_per_1m_tokens
                    + completion_tokens * upstream.completion_usd_per_1m_tokens) / 1e6, "config"
        value = token_price_usd(upstream.upstream_model, prompt_tokens, completion_tokens, self.config)
        return (0.0, "unknown") if value is None else (float(value), "catalogue")

    def record(self, record: RequestRecord) -> None:
        """Count a finished request and queue its ledger row (written off the event loop)."""
        self.stats["requests"] += 1
        key = {"ok": "ok", "rejected": "rejected"}.get(record.status, "errors")
        self.stats[key] += 1
        self.stats["prompt_tokens"] += record.prompt_tokens
        self.stats["completion_tokens"] += record.completion_tokens
        self.stats["cost_usd"] += record.cost_usd
        m = self.metrics
        m.requests.labels(record.route, record.model, record.status).inc()
        m.latency.labels(record.route).observe(record.latency_ms / 1000)
        if record.status != "rejected":
            m.tokens.labels(record.model, "prompt").inc(record.prompt_tokens)
            m.tokens.labels(record.model, "completion").inc(record.completion_tokens)
            m.cost.labels(record.model).inc(record.cost_usd)
        if record.api_key:
            self.budgets.charge(record.api_key, record.cost_usd)
        if self.recorder is not None:
            self.recorder.submit(record)

    def failed_attempt(self, failure: UpstreamFailure, attempts: list[dict[str, Any]]) -> None:
        """Note one failed upstream call."""
        self.metrics.upstream_errors.labels(failure.model, failure.reason).inc()
        attempts.append({"model": failure.model, "reason": failure.reason, "error": failure.message})

    def _failed(self, failure: UpstreamFailure, failures: list[UpstreamFailure], attempts: list[dict[str, Any]],
                record: RequestRecord) -> bool:
        """Record a failed upstream call on the request; True when the next candidate should be tried."""
        failures.append(failure)
        self.failed_attempt(failure, attempts)
        record.extra["attempts"] = attempts
        return failure.retryable

    def _fell_back(self, failures: list[UpstreamFailure], record: RequestRecord, model: str) -> None:
        """Count a request that `model` answered after earlier candidates failed."""
        if failures:
            record.extra["fallback_from"] = failures[0].model
            self.metrics.fallbacks.labels(record.route, model).inc()
            self.stats["fallbacks"] += 1

    # -- the request path ---------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> tuple[str, JSONResponse | None]:
        """The caller's key name ("" when the gateway has no keys), or a 401 response."""
        if not self.budgets.required:
            return "", None
        secret = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
        name = self.budgets.identify(secret)
        if name is None:
            self.metrics.rejected.labels("auth").inc()
            message = "missing API key" if not secret else "invalid API key"
            return "", error_response(401, f"{message}: send `Authorization: Bearer <key>` with a configured key",
                                      code="invalid_api_key")
        return name, None

    async def plan(self, route: Route, prompt: str, knob: float | None) -> tuple[list[str], float | None, str]:
        """Candidates in order, the router's score, and a router error ("" when none).

        A fitted router may take milliseconds (embeddings), so it runs on a worker thread, batched with the
        requests that arrive meanwhile; if it fails, the request still goes out in the route's listed order.
        """
        try:
            batcher = self.batchers.get(route.name)
            if batcher is None:
                candidates, score = route.plan(prompt, knob)
                return candidates, score, ""
            decision = await batcher.decide(prompt, route.knob if knob is None else knob)
            return route.order(str(decision.model)), float(decision.score), ""
        except Exception as exc:  # noqa: BLE001 - a broken router must not take the gateway down
            return route.order(None), None, f"{type(exc).__name__}: {exc}"

    async def parse(self, request: Request) -> tuple[dict[str, Any], ChatRequest] | JSONResponse:
        """The body as sent and as read, or a 400 naming what is wrong."""
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return error_response(400, "request body is not valid JSON", code="invalid_json")
        if not isinstance(payload, dict):
            return error_response(400, "request body must be a JSON object", code="invalid_json")
        try:
            return payload, ChatRequest.model_validate(payload)
        except ValidationError as exc:
            return validation_error_response(exc)

    @staticmethod
    def knob_override(request: Request) -> float | None | JSONResponse:
        """The knob from the X-Truecost-Knob header (None when absent), or a 400."""
        raw = request.headers.get(KNOB_HEADER)
        if raw is None:
            return None
        try:
            knob = float(raw)
        except ValueError:
            knob = math.nan
        if not math.isfinite(knob) or knob < 0:
            return error_response(400, f"header {KNOB_HEADER} must be a number >= 0, got {raw!r}",
                                  param=KNOB_HEADER, code="invalid_value")
        return knob

    def bad_request(self, response: JSONResponse) -> JSONResponse:
        """Count a malformed request (never logged in the ledger) and pass its 400 on."""
        self.metrics.rejected.labels("bad_request").inc()
        return response

    def refuse_over_budget(self, record: RequestRecord, started: float) -> JSONResponse:
        """Log the refusal and answer 429 the way OpenAI reports an exhausted quota."""
        self.metrics.rejected.labels("budget").inc()
        record.status = "rejected"
        record.extra["reason"] = "budget"
        record.latency_ms = (time.perf_counter() - started) * 1000
        self.record(record)
        limit = self.budgets.limits_usd()[record.api_key]
        return error_response(429, f"API key {record.api_key!r} has used its budget of ${limit:g}; raise budget_usd "
                              "in the gateway config or use another key", type_="insufficient_quota",
                              code="budget_exceeded")

    async def chat_completions(self, request: Request) -> Response:
        """POST /v1/chat/completions: check, route, call upstreams with fallback, price and log."""
        started = time.perf_counter()
        timestamp = datetime.now(UTC)
        key_name, denied = self.authenticate(request.headers.get("authorization"))
        if denied is not None:
            return denied
        parsed = await self.parse(request)
        if isinstance(parsed, JSONResponse):
            return self.bad_request(parsed)
        knob = self.knob_override(request)
        if isinstance(knob, JSONResponse):
            return self.bad_request(knob)
        payload, chat = parsed
        route = self.routes.get(chat.model)
        if route is None and chat.model not in self.model_names:
            self.metrics.rejected.labels("unknown_model").inc()
            return error_response(404, f"model {chat.model!r} does not exist here; choose one of "
                                  f"{', '.join(self.model_names)}", param="model", code="model_not_found")
        prompt = routing_prompt(chat)
        record = RequestRecord(timestamp=timestamp, model="", route=chat.model, api_key=key_name, run_id=self.run_id,
                               prompt=prompt if self.settings.log_text else None,
                               extra={"request_id": f"{self.id_prefix}-{next(self.request_numbers)}",
                                      "stream": chat.stream})
        if key_name and self.budgets.exhausted(key_name):
            return self.refuse_over_budget(record, started)
        candidates = [chat.model]
        if route is not None:
            candidates, record.router_score, router_error = await self.plan(route, prompt, knob)
            record.extra["knob"] = route.knob if knob is None else knob
            if router_error:
                record.extra["router_error"] = router_error
        body = {k: v for k, v in payload.items() if k != "model"}
        if chat.stream:
            return await self._stream(chat, body, candidates, record, started, prompt_chars(chat))
        return await self._complete(body, candidates, record, started, prompt_chars(chat))

    def _headers(self, record: RequestRecord) -> dict[str, str]:
        headers = {"x-truecost-model": record.model, "x-truecost-route": record.route,
                   "x-truecost-request-id": str(record.extra["request_id"])}
        if record.router_score is not None:
            headers["x-truecost-score"] = f"{record.router_score:.6g}"
        return headers

    def _all_failed(self, record: RequestRecord, failures: list[UpstreamFailure], started: float) -> Response:
        """Every candidate failed: pass on an upstream's own 4xx, else 502/504 in OpenAI's shape; log it."""
        last = failures[-1]
        record.model = last.model
        record.status = "error"
        record.latency_ms = (time.perf_counter() - started) * 1000
        self.record(record)
        if not last.retryable and last.status_code is not None and last.status_code >= 400:
            try:
                content = json.loads(last.body)
            except ValueError:
                content = None
            if isinstance(content, dict) and isinstance(content.get("error"), dict):
                return JSONResponse(content, status_code=last.status_code, headers=self._headers(record))
            return error_response(last.status_code, f"upstream {last.model} refused the request: {last.message}",
                                  type_="upstream_error", headers=self._headers(record))
        status = 504 if all(f.reason == "timeout" for f in failures) else 502
        summary = "; ".join(str(f) for f in failures)
        return error_response(status, f"no upstream answered: {summary}", type_="upstream_error",
                              code="upstream_timeout" if status == 504 else "upstream_unavailable",
                              headers=self._headers(record))

    async def _complete(self, body: dict[str, Any], candidates: list[str], record: RequestRecord,
                        started: float, prompt_chars: int) -> Response:
        assert self.pool is not None
        failures: list[UpstreamFailure] = []
        attempts: list[dict[str, Any]] = []
        for name in candidates:
            try:
                completion = await self.pool.complete(name, body)
            except UpstreamFailure as failure:
                if self._failed(failure, failures, attempts, record):
                    continue
                break
            usage = completion.data.get("usage")
            record.model = name
            contents = [c.get("message", {}).get("content") for c in completion.data.get("choices") or []
                        if isinstance(c, dict) and isinstance(c.get("message"), dict)]
            texts = [c for c in contents if isinstance(c, str)]
            if isinstance(usage, dict) and "prompt_tokens" in usage:
                record.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                record.completion_tokens = int(usage.get("completion_tokens") or 0)
            else:
                # No usage reported: estimate from the text, so spend and budgets still count this request.
                record.prompt_tokens = estimate_tokens(prompt_chars)
                record.completion_tokens = estimate_tokens(sum(map(len, texts)))
                record.extra["tokens_estimated"] = True
            record.cost_usd, record.extra["price_source"] = self.price_usd(name, record.prompt_tokens,
                                                                           record.completion_tokens)
            if self.settings.log_text:
                record.output = texts[0] if texts else None
            record.extra["upstream_ms"] = round(completion.upstream_ms, 3)
            self._fell_back(failures, record, name)
            record.latency_ms = (time.perf_counter() - started) * 1000
            self.record(record)
            headers = self._headers(record)
            headers["x-truecost-cost-usd"] = f"{record.cost_usd:.8f}"
            return Response(content=completion.body, media_type="application/json", headers=headers)
        return self._all_failed(record, failures, started)

    async def _stream(self, chat: ChatRequest, body: dict[str, Any], candidates: list[str],
                      record: RequestRecord, started: float, prompt_chars: int) -> Response:
        assert self.pool is not None
        failures: list[UpstreamFailure] = []
        attempts: list[dict[str, Any]] = []
        for name in candidates:
            try:
                upstream = await self.pool.open_stream(name, body)
            except UpstreamFailure as failure:
                if self._failed(failure, failures, attempts, record):
                    continue
                break
            record.model = name
            self._fell_back(failures, record, name)
            relay = SSERelay(drop_usage_only=not chat.wants_usage_in_stream, keep_text=self.settings.log_text)
            headers = {**self._headers(record), "cache-control": "no-cache"}
            return StreamingResponse(self._relay(upstream, relay, record, started, prompt_chars),
                                     media_type="text/event-stream", headers=headers)
        return self._all_failed(record, failures, started)

    async def _relay(self, upstream: UpstreamStream, relay: SSERelay, record: RequestRecord,
                     started: float, prompt_chars: int) -> AsyncIterator[bytes]:
        """Forward the upstream's events as they arrive; once the stream ends (or breaks), price and log it."""
        status = "ok"
        first_byte_ms: float | None = None
        try:
            async for chunk in upstream.response.aiter_bytes():
                for event in relay.feed(chunk):
                    if first_byte_ms is None:
                        first_byte_ms = (time.perf_counter() - started) * 1000
                    yield event
            for event in relay.flush():
                yield event
            if relay.tally.error is not None:
                status = "error"
        except httpx.HTTPError as exc:
            # Bytes already reached the client, so no fallback now: end the stream with an error event.
            status = "error"
            record.extra["stream_error"] = f"{type(exc).__name__}: {exc}"
            self.metrics.upstream_errors.labels(record.model, "stream").inc()
            error = {"error": {"message": f"upstream {record.model} broke off the stream", "type": "upstream_error",
                               "param": None, "code": "upstream_stream_broken"}}
            yield f"data: {json.dumps(error)}\n\n".encode()
        except BaseException:
            status = "client_closed"  # the client went away (cancellation); still log what was used
            raise
        finally:
            tally = relay.tally
            record.status = status
            if tally.prompt_tokens is not None:
                record.prompt_tokens = tally.prompt_tokens
                record.completion_tokens = tally.completion_tokens or 0
            else:
                record.prompt_tokens = estimate_tokens(prompt_chars)
                record.completion_tokens = estimate_tokens(tally.output_chars)
                record.extra["tokens_estimated"] = True
            record.cost_usd, record.extra["price_source"] = self.price_usd(record.model, record.prompt_tokens,
                                                                           record.completion_tokens)
            if self.settings.log_text:
                record.output = tally.text
            if first_byte_ms is not None:
                record.extra["first_byte_ms"] = round(first_byte_ms, 3)
            record.latency_ms = (time.perf_counter() - started) * 1000
            self.record(record)
            with anyio.CancelScope(shield=True):
                await upstream.aclose()

    # -- the other endpoints ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /healthz: alive, and what it serves."""
        return {"status": "ok", "routes": list(self.routes), "upstreams": [u.name for u in self.settings.upstreams],
                "requests": int(self.stats["requests"]),
                "ledger_pending": self.recorder.pending if self.recorder else 0}

    def metrics_text(self) -> bytes:
        """GET /metrics in Prometheus text format."""
        from prometheus_client import generate_latest

        for name, spent in self.budgets.spent_usd().items():
            self.metrics.budget_spent.labels(name).set(spent)
        self.metrics.ledger_pending.set(self.recorder.pending if self.recorder else 0)
        return generate_latest(self.metrics.registry)


def create_app(settings: GatewaySettings, *, routers: dict[str, Any] | None = None, ledger: Any = None,
               run_id: str | None = None, config: Any = None) -> FastAPI:
    """The gateway as an ASGI app; `routers` gives ready router objects by route name (any object with
    `models` and `route(prompt, knob)`), `ledger` receives one row per request, tagged with `run_id`.
    """
    from prometheus_client import CONTENT_TYPE_LATEST

    gateway = Gateway(settings, routers=routers, ledger=ledger, run_id=run_id, config=config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(title="truecost gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, str(exc.errors()[0].get("msg", "invalid request")))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await gateway.chat_completions(request)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return models_list(gateway.model_names)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return gateway.health()

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gateway.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    return app
