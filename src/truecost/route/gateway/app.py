"""The gateway's HTTP app: OpenAI chat completions and embeddings, Anthropic messages, the spend API, health
and Prometheus metrics. Endpoints read and check the request, hand it to the flows in `flows.py`, and write the
answer in the client's wire format.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from truecost.route.gateway import anthropic_api, flows
from truecost.route.gateway.body import read_json_object
from truecost.route.gateway.budget import Caller
from truecost.route.gateway.cache import cache_key
from truecost.route.gateway.core import Call, Gateway, aclosing_iter
from truecost.route.gateway.openai_api import (
    ChatRequest,
    EmbeddingsRequest,
    error_response,
    models_list,
    prompt_texts,
    routing_prompt,
    validation_error_response,
)
from truecost.route.gateway.settings import (
    CACHE_HEADER,
    KNOB_HEADER,
    TAGS_HEADER,
    USER_HEADER,
    GatewaySettings,
    KeySettings,
)
from truecost.route.gateway.sse import StreamEvent, is_usage_only

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.ledger import Ledger

__all__ = ["Gateway", "create_app"]

M = TypeVar("M", bound=BaseModel)


def _bearer(request: Request) -> str | None:
    """The secret from `Authorization: Bearer ...`, or Anthropic's `x-api-key`."""
    authorization = request.headers.get("authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return request.headers.get("x-api-key")


def _knob(request: Request) -> float | None | JSONResponse:
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


def _caller(request: Request, payload: dict[str, Any], key: KeySettings | None) -> Caller:
    """Key, team, user (body `user`, else header) and tags (header, else `metadata.tags`)."""
    user = payload.get("user") if isinstance(payload.get("user"), str) else request.headers.get(USER_HEADER, "")
    raw_tags = request.headers.get(TAGS_HEADER)
    metadata: dict[str, Any] = payload["metadata"] if isinstance(payload.get("metadata"), dict) else {}
    tags = raw_tags.split(",") if raw_tags is not None else metadata.get("tags") or []
    clean = tuple(dict.fromkeys(str(t).strip() for t in tags if str(t).strip() and "," not in str(t)))
    return Caller(key.name if key else "", (key.team or "") if key else "", str(user or "")[:200], clean)


def _cache_wanted(request: Request) -> bool:
    control = request.headers.get("cache-control", "").lower()
    return request.headers.get(CACHE_HEADER, "").lower() not in ("off", "no", "0", "false") and \
        "no-cache" not in control and "no-store" not in control


async def _admitted(gw: Gateway, request: Request, payload: dict[str, Any], *, endpoint: str, model: str,
                    prompt: list[str], routing_text: str, stream: bool, completion_limit: int | None,
                    key: KeySettings | None) -> Call | JSONResponse:
    """Model known, knob valid, rate limits kept, candidates planned and the worst case reserved."""
    knob = _knob(request)
    if isinstance(knob, JSONResponse):
        gw.metrics.rejected.labels("bad_request").inc()
        return knob
    route = gw.routes.get(model)
    if route is None and model not in gw.model_names:
        gw.metrics.rejected.labels("unknown_model").inc()
        return error_response(404, f"model {model!r} does not exist here; choose one of "
                              f"{', '.join(gw.model_names)}", param="model", code="model_not_found")
    caller = _caller(request, payload, key)
    call = Call(endpoint, payload, caller, gw.new_record(model, caller, stream, routing_text), time.perf_counter(),
                prompt, completion_limit, route, [model] if route is None else list(route.models))
    if gw.cache is not None and (route is None or route.cache_ttl_s != 0) and _cache_wanted(request):
        call.cache_key = cache_key(endpoint, payload, caller.key, gw.settings.cache.shared_across_keys)
    refused = await gw.admit(call, key)
    if refused is not None:
        return refused
    if route is not None and endpoint == "chat" and route.cascade is None:
        planned = time.perf_counter()
        call.candidates, call.record.router_score, router_error = await gw.plan(route, routing_text, knob)
        call.record.extra["route_ms"] = round((time.perf_counter() - planned) * 1000, 3)
        call.record.extra["knob"] = route.knob if knob is None else knob
        if router_error:
            call.record.extra["router_error"] = router_error
    return call


def _checked(gw: Gateway, request: Request, payload: dict[str, Any], shape: type[M]
             ) -> tuple[KeySettings | None, M] | JSONResponse:
    """The caller's key and the request read as `shape`, or the 401/400 to answer."""
    key = gw.authenticate(_bearer(request))
    if isinstance(key, JSONResponse):
        return key
    try:
        return key, shape.model_validate(payload)
    except ValidationError as exc:
        gw.metrics.rejected.labels("bad_request").inc()
        return validation_error_response(exc)


async def _chat(gw: Gateway, request: Request, payload: dict[str, Any]) -> tuple[Call, ChatRequest] | JSONResponse:
    """Authenticate, validate and admit a chat request (OpenAI-shaped payload)."""
    checked = _checked(gw, request, payload, ChatRequest)
    if isinstance(checked, JSONResponse):
        return checked
    key, chat = checked
    call = await _admitted(gw, request, payload, endpoint="chat", model=chat.model, prompt=prompt_texts(chat),
                           routing_text=routing_prompt(chat), stream=chat.stream,
                           completion_limit=chat.completion_limit, key=key)
    return call if isinstance(call, JSONResponse) else (call, chat)


async def _answer(gw: Gateway, call: Call, stream: bool) -> flows.Answer | JSONResponse:
    """Cache, budget, upstream: the answer or the error response."""
    cached = await flows.from_cache(gw, call)
    if cached is not None:
        answer = flows.cache_hit(gw, call, cached)
        if stream:
            answer.events = flows.replay(cached.completion)
        return answer
    refused = await gw.reserve(call, call.candidates)
    if refused is not None:
        return refused
    if call.endpoint == "embeddings":
        got = await flows.embed(gw, call)
    else:
        got = await (flows.stream(gw, call) if stream else flows.complete(gw, call))
    if got is None:
        await gw.settle(call)
        return gw.all_failed(call)
    return got


# -- wire formats -----------------------------------------------------------------------------------------------
async def _openai_events(events: AsyncIterator[StreamEvent], wants_usage: bool) -> AsyncIterator[bytes]:
    errored = False
    async for event in aclosing_iter(events):
        if "error" in event.chunk:
            errored = True
        elif is_usage_only(event.chunk) and not wants_usage:
            continue  # the gateway asked for it on its own behalf
        yield b"data: " + event.data.encode() + b"\n\n"
    if not errored:
        yield b"data: [DONE]\n\n"


async def _anthropic_events(events: AsyncIterator[StreamEvent], model: str, message_id: str) -> AsyncIterator[bytes]:
    writer = anthropic_api.ChunksToAnthropic(model, message_id)
    async for event in aclosing_iter(events):
        if "error" in event.chunk:
            error = anthropic_api.error_to_anthropic(event.chunk)
            yield f"event: error\ndata: {json.dumps(error)}\n\n".encode()
            return
        for data in writer.feed(event.chunk):
            yield data
    for data in writer.finish():
        yield data


def _openai_response(answer: flows.Answer, wants_usage: bool) -> Response:
    if answer.events is not None:
        return StreamingResponse(_openai_events(answer.events, wants_usage), media_type="text/event-stream",
                                 headers=answer.headers)
    if answer.body is not None:
        return Response(content=answer.body, media_type="application/json", headers=answer.headers)
    return JSONResponse(answer.completion, headers=answer.headers)


def _anthropic_response(answer: flows.Answer | JSONResponse, model: str) -> Response:
    if isinstance(answer, JSONResponse):
        body = json.loads(bytes(answer.body))
        headers = {k: v for k, v in answer.headers.items() if k.startswith(("retry-after", "x-truecost"))}
        return JSONResponse(anthropic_api.error_to_anthropic(body), status_code=answer.status_code, headers=headers)
    message_id = f"msg_{answer.headers.get('x-truecost-request-id', '')}"
    if answer.events is not None:
        return StreamingResponse(_anthropic_events(answer.events, model, message_id), media_type="text/event-stream",
                                 headers=answer.headers)
    assert answer.completion is not None
    return JSONResponse(anthropic_api.completion_to_message(answer.completion, model), headers=answer.headers)


# -- endpoints --------------------------------------------------------------------------------------------------
async def chat_completions(gw: Gateway, request: Request) -> Response:
    """POST /v1/chat/completions."""
    payload = await read_json_object(request, gw.settings.max_body_bytes)
    if isinstance(payload, JSONResponse):
        gw.metrics.rejected.labels("bad_request").inc()
        return payload
    admitted = await _chat(gw, request, payload)
    if isinstance(admitted, JSONResponse):
        return admitted
    call, chat = admitted
    answer = await _answer(gw, call, chat.stream)
    return answer if isinstance(answer, JSONResponse) else _openai_response(answer, chat.wants_usage_in_stream)


async def messages(gw: Gateway, request: Request) -> Response:
    """POST /v1/messages: Anthropic's Messages API over the same routes and upstreams."""
    payload = await read_json_object(request, gw.settings.max_body_bytes)
    if isinstance(payload, JSONResponse):
        gw.metrics.rejected.labels("bad_request").inc()
        return _anthropic_response(payload, "")
    if not isinstance(payload.get("messages"), list) or not payload.get("max_tokens"):
        return _anthropic_response(error_response(400, "messages and max_tokens are required",
                                                  code="invalid_value"), "")
    chat_payload = anthropic_api.messages_to_chat(payload)
    admitted = await _chat(gw, request, chat_payload)
    if isinstance(admitted, JSONResponse):
        return _anthropic_response(admitted, "")
    call, chat = admitted
    call.record.extra["api"] = "anthropic"
    return _anthropic_response(await _answer(gw, call, chat.stream), chat.model)


async def embeddings(gw: Gateway, request: Request) -> Response:
    """POST /v1/embeddings."""
    payload = await read_json_object(request, gw.settings.max_body_bytes)
    if isinstance(payload, JSONResponse):
        return payload
    checked = _checked(gw, request, payload, EmbeddingsRequest)
    if isinstance(checked, JSONResponse):
        return checked
    key, parsed = checked
    call = await _admitted(gw, request, payload, endpoint="embeddings", model=parsed.model, prompt=parsed.texts,
                           routing_text="", stream=False, completion_limit=None, key=key)
    if isinstance(call, JSONResponse):
        return call
    call.completion_limit = 0
    answer = await _answer(gw, call, False)
    return answer if isinstance(answer, JSONResponse) else _openai_response(answer, False)


def _when(raw: str | None, name: str) -> datetime | None | JSONResponse:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return error_response(400, f"{name} must be an ISO 8601 time, got {raw!r}", param=name)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def spend(gw: Gateway, request: Request) -> Response:
    """GET /v1/spend?group_by=team&since=...&until=...&team=...: spend from the ledger (admin key)."""
    denied = gw.authorize_admin(_bearer(request))
    if denied is not None:
        return denied
    from truecost.ledger.spend import GROUPS

    query = request.query_params
    group_by = query.get("group_by", "key")
    if group_by not in GROUPS:
        return error_response(400, f"group_by must be one of {', '.join(GROUPS)}", param="group_by")
    since, until = _when(query.get("since"), "since"), _when(query.get("until"), "until")
    if isinstance(since, JSONResponse):
        return since
    if isinstance(until, JSONResponse):
        return until
    ledger = gw.ledger
    if ledger is None:
        return error_response(404, "this gateway writes no ledger", code="no_ledger")
    if gw.recorder is not None:
        await anyio.to_thread.run_sync(gw.recorder.flush, 10.0)
    where = {g: query[g] for g in GROUPS if g in query}
    rows = await anyio.to_thread.run_sync(lambda: ledger.spend(group_by, since=since, until=until, where=where))
    return JSONResponse({"group_by": group_by, "since": since.isoformat() if isinstance(since, datetime) else None,
                         "until": until.isoformat() if isinstance(until, datetime) else None, "where": where,
                         "data": [r.to_dict() for r in rows],
                         "total_cost_usd": sum(r.cost_usd for r in rows) if group_by != "tag" else None})


async def metrics(gw: Gateway, request: Request) -> Response:
    """GET /metrics (admin key)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    denied = gw.authorize_admin(_bearer(request))
    if denied is not None:
        return denied
    if gw.budgets is not None:
        for name, spent in (await gw.budgets.spent_usd()).items():
            gw.metrics.budget_spent.labels(name).set(spent)
    gw.metrics.ledger_pending.set(gw.recorder.pending if gw.recorder else 0)
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: GatewaySettings, *, routers: dict[str, Any] | None = None, ledger: Ledger | None = None,
               run_id: str | None = None, config: Config | None = None, clock: Any = None,
               redis: Any = None) -> FastAPI:
    """The gateway as an ASGI app; `routers` gives ready router objects by route name (any object with
    `models` and `route(prompt, knob)`), `ledger` receives one row per request, tagged with `run_id`; `clock`
    (a callable returning an aware datetime) replaces the wall clock for budget periods and rate windows.
    """
    gateway = Gateway(settings, routers=routers, ledger=ledger, run_id=run_id, config=config, clock=clock,
                      redis=redis)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        await flows.warm_routers(gateway)
        if gateway.semantic is not None:
            await flows.warm_semantic_cache(gateway)
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

    for path, handler in (("/v1/chat/completions", chat_completions), ("/v1/messages", messages),
                          ("/v1/embeddings", embeddings)):
        app.add_api_route(path, _bind(gateway, handler), methods=["POST"])
    for path, handler in (("/v1/spend", spend), ("/metrics", metrics)):
        app.add_api_route(path, _bind(gateway, handler), methods=["GET"])

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return models_list(gateway.model_names)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "routes": list(gateway.routes), "upstreams": [u.name for u in settings.upstreams],
                "requests": int(gateway.stats["requests"]),
                "ledger_pending": gateway.recorder.pending if gateway.recorder else 0}

    return app


def _bind(gateway: Gateway, handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        return await handler(gateway, request)

    endpoint.__name__ = handler.__name__
    return endpoint
