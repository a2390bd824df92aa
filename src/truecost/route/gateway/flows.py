"""The request flows after admission: cache, budget reservation, upstream calls (plain, streamed, cascaded,
embeddings), pricing and the ledger row. Each returns an `Answer` (or an error response) in OpenAI's shape; the
endpoints write it in the client's wire format.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import anyio
import httpx

from truecost.route.gateway import cache as caching
from truecost.route.gateway.cascade import rule_failure, verifier_failure
from truecost.route.gateway.core import Call, Gateway
from truecost.route.gateway.sse import StreamEvent, StreamTally, completion_chunks
from truecost.route.gateway.tokens import Usage
from truecost.route.gateway.upstream import Completion, StreamBroken, UpstreamStream


@dataclass
class Answer:
    """A finished answer (`completion`, with its raw OpenAI body when untouched) or a stream of chunks."""

    headers: dict[str, str]
    completion: dict[str, Any] | None = None
    body: bytes | None = None
    events: AsyncIterator[StreamEvent] | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


# -- cache ------------------------------------------------------------------------------------------------------
def cache_ttl_s(gw: Gateway, call: Call) -> float:
    """How long this request's answer stays cached (0: not cached)."""
    if gw.cache is None or call.cache_key is None:
        return 0.0
    ttl = call.route.cache_ttl_s if call.route is not None else None
    return gw.settings.cache.ttl_s if ttl is None else ttl


def _embedder(route: Any) -> Any:
    """What the semantic cache embeds with: the route's router's embedder when it is the transformer MiniLM (the
    routed prompt is then embedded once), else MiniLM. Static and TF-IDF vectors are no word-order models: on
    paraphrase and near-miss pairs static MiniLM at any threshold served as many wrong answers as right ones."""
    embedder = getattr(route.router, "embedder_", None) if route is not None and route.router is not None else None
    if getattr(embedder, "kind", None) == "minilm" and not getattr(embedder, "fast", True):
        return embedder
    return _cache_minilm()


@lru_cache(maxsize=1)
def _cache_minilm() -> Any:
    from truecost.route.embeddings import MiniLMEmbedder

    return MiniLMEmbedder()


async def warm_routers(gw: Gateway) -> None:
    """Load what each route's router needs for its first decision (a fitted router's embedding model) before the
    first request; routers without `warm_up` (any object with `models` and `route`) are left as they are."""
    for route in gw.routes.values():
        warm_up = getattr(route.router, "warm_up", None)
        if callable(warm_up):
            await anyio.to_thread.run_sync(warm_up, limiter=gw.router_limiter)


async def warm_semantic_cache(gw: Gateway) -> None:
    """Load every embedder the semantic cache will use before the first request (MiniLM takes seconds)."""
    for route in [*gw.routes.values(), None]:
        await anyio.to_thread.run_sync(_embedder(route).transform, ["warm up"], limiter=gw.router_limiter)


async def _embed(gw: Gateway, call: Call, text: str) -> Any:
    vectors = await anyio.to_thread.run_sync(_embedder(call.route).transform, [text], limiter=gw.router_limiter)
    return vectors[0]


async def from_cache(gw: Gateway, call: Call) -> caching.CachedAnswer | None:
    """The cached answer for this request (exact, then semantic when configured), or None."""
    if cache_ttl_s(gw, call) <= 0:
        return None
    assert gw.cache is not None and call.cache_key is not None
    data = await gw.cache.get(call.cache_key)
    if data is None and gw.semantic is not None and call.endpoint == "chat":
        data = await _semantic_hit(gw, gw.semantic, call)
    return caching.CachedAnswer.from_bytes(data) if data is not None else None


async def _semantic_hit(gw: Gateway, semantic: caching.SemanticIndex, call: Call) -> bytes | None:
    """The cached answer of the closest earlier request whose messages embed near this one's, write the same
    numbers and are not a near-miss of them (`caching.near_miss`), or None. Messages longer than the embedder
    reads whole are not compared (`SEMANTIC_MAX_CHARS`)."""
    assert gw.cache is not None and call.cache_key is not None
    text = caching.messages_text(call.payload)
    if len(text) > caching.SEMANTIC_MAX_CHARS:
        return None
    owner = call.cache_key.split(":")[1]
    bucket = caching.semantic_bucket(
        f"{owner}:{call.cache_variant}:{caching.normalised(call.payload, without_messages=True)}", text)
    vector = await _embed(gw, call, text)
    words = caching.words_of(text)
    call.semantic = (bucket, vector, words)
    match = semantic.nearest(bucket, vector)
    if match is None:
        return None
    refused = await anyio.to_thread.run_sync(semantic.refusal, match, words, limiter=gw.router_limiter)
    if refused is not None:  # alike, but a near-miss: asked upstream, and the ledger says why
        call.record.extra["semantic_refused"] = f"{refused} (similarity {match.similarity:.4f})"
        return None
    data = await gw.cache.get(match.key)
    if data is not None:
        call.record.extra["semantic_similarity"] = round(match.similarity, 4)
    return data


def cache_hit(gw: Gateway, call: Call, cached: caching.CachedAnswer) -> Answer:
    """Answer from the cache: a ledger row with cost 0 and what the call would have cost as `saved_usd`."""
    record = call.record
    record.model, record.cache_hit, record.saved_usd = cached.model, True, cached.cost_usd
    record.prompt_tokens, record.completion_tokens = cached.prompt_tokens, cached.completion_tokens
    record.extra["price_source"] = gw.prices.source(cached.model) if cached.model in gw.counters else "unknown"
    if gw.settings.log_text and call.endpoint == "chat":
        from truecost.route.gateway.cascade import answer_text

        record.output = answer_text(cached.completion)
    gw.finish(call)
    return Answer(headers=gw.headers(record), completion=cached.completion)


async def remember(gw: Gateway, call: Call, completion: dict[str, Any]) -> None:
    """Store a successful answer for this request's cache key (and its semantic vector)."""
    ttl = cache_ttl_s(gw, call)
    if ttl <= 0 or call.record.status != "ok":
        return
    assert gw.cache is not None and call.cache_key is not None
    record = call.record
    entry = caching.CachedAnswer(completion, record.model, record.cost_usd, record.prompt_tokens,
                                 record.completion_tokens)
    await gw.cache.set(call.cache_key, entry.to_bytes(), ttl)
    if gw.semantic is not None and call.semantic is not None:
        gw.semantic.add(call.semantic[0], call.semantic[1], call.cache_key, call.semantic[2])


# -- plain completions ------------------------------------------------------------------------------------------
def _note_completion(gw: Gateway, call: Call, name: str, completion: Completion) -> None:
    from truecost.route.gateway.cascade import answer_text

    text = answer_text(completion.data)
    gw.priced(call, name, gw.usage_of(call, name, completion.data.get("usage"), text))
    call.record.extra["upstream_ms"] = round(completion.upstream_ms, 3)
    if gw.settings.log_text:
        call.record.output = text


async def complete(gw: Gateway, call: Call) -> Answer | None:
    """A non-streamed chat completion (cascaded when the route says so); None when every upstream failed."""
    assert gw.pool is not None
    pool = gw.pool
    if call.route is not None and call.route.cascade is not None:
        got = await _cascade(gw, call)
    else:
        got = await gw.attempt(call, lambda name: pool.complete(name, call.body))
    if got is None:
        return None
    name, completion = got
    _note_completion(gw, call, name, completion)
    call.record.cost_usd += float(call.record.extra.get("escalated_cost_usd", 0.0))
    await gw.settle(call)
    await remember(gw, call, completion.data)
    gw.finish(call)
    headers = {**gw.headers(call.record), "x-truecost-cost-usd": f"{call.record.cost_usd:.8f}"}
    return Answer(headers=headers, completion=completion.data, body=completion.body)


async def _cascade(gw: Gateway, call: Call) -> tuple[str, Completion] | None:
    """Each model in turn, cheapest first, until an answer passes the checks (or the last model answers).

    An escalated answer keeps its own ledger row (status `escalated`), so both calls are on record.
    """
    assert gw.pool is not None and call.route is not None and call.route.cascade is not None
    pool, check, models = gw.pool, call.route.cascade, list(call.candidates)
    for step, model in enumerate(models):
        call.candidates = [model]
        got = await gw.attempt(call, lambda name: pool.complete(name, call.body))
        if got is None or step == len(models) - 1:
            if got is not None:
                call.record.extra["cascade_step"] = step
            continue
        reason = rule_failure(check, got[1].data)
        if reason is None and check.verifier:
            prompt = call.prompt[-1] if call.prompt else ""
            reason = await anyio.to_thread.run_sync(verifier_failure, call.route.router, prompt, got[1].data,
                                                    call.route.knob, limiter=gw.router_limiter)
        if reason is None:
            call.record.extra["cascade_step"] = step
            return got
        _escalated_row(gw, call, got, reason)
    return got if got is not None else None


def _escalated_row(gw: Gateway, call: Call, got: tuple[str, Completion], reason: str) -> None:
    """Log the cheap call whose answer failed the check, as its own row, and carry its cost to the request."""
    import copy

    step = Call(call.endpoint, call.payload, call.caller, copy.deepcopy(call.record), call.started, call.prompt)
    _note_completion(gw, step, *got)
    step.record.status = "escalated"
    step.record.extra.update(escalated_because=reason, cascade_step=0)
    gw.finish(step)
    call.record.extra["escalated_from"] = got[0]
    call.record.extra["escalated_cost_usd"] = call.record.extra.get("escalated_cost_usd", 0.0) + step.record.cost_usd


# -- streams ----------------------------------------------------------------------------------------------------
async def stream(gw: Gateway, call: Call) -> Answer | None:
    """A streamed chat completion whose first event has already arrived; None when every upstream failed."""
    assert gw.pool is not None
    pool = gw.pool
    got = await gw.attempt(call, lambda name: pool.open_stream(name, call.body))
    if got is None:
        return None
    name, upstream = got
    call.record.model = name
    return Answer(headers={**gw.headers(call.record), "cache-control": "no-cache"},
                  events=_relay(gw, call, name, upstream))


async def _relay(gw: Gateway, call: Call, name: str, upstream: UpstreamStream) -> AsyncIterator[StreamEvent]:
    """Pass the upstream's chunks on as they arrive; once the stream ends (or breaks), price and log it."""
    tally = StreamTally(keep_text=True)
    status = "ok"
    try:
        for event in upstream.first:
            tally.add(event.chunk)
            yield event
        async for event in upstream.events():
            tally.add(event.chunk)
            yield event
        if tally.error is not None:
            status = "error"
    except (StreamBroken, httpx.HTTPError) as exc:
        # Bytes already reached the client, so no fallback now: end the stream with an error event.
        status = "error"
        call.record.extra["stream_error"] = f"{type(exc).__name__}: {exc}"
        gw.metrics.upstream_errors.labels(name, "stream").inc()
        error = {"error": {"message": f"upstream {name} broke off the stream", "type": "upstream_error",
                           "param": None, "code": "upstream_stream_broken"}}
        yield StreamEvent(json.dumps(error), error)
    except BaseException:
        status = "client_closed"  # the client went away (cancellation); still log what was used
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await _close_stream(gw, call, name, upstream, tally, status)


async def _close_stream(gw: Gateway, call: Call, name: str, upstream: UpstreamStream, tally: StreamTally,
                        status: str) -> None:
    if upstream.malformed:
        # Malformed events were dropped, not relayed; the request is logged as an error so they are seen.
        status = "error" if status == "ok" else status
        call.record.extra["malformed_events"] = len(upstream.malformed)
        call.record.extra["malformed_example"] = upstream.malformed[0][:200]
        gw.metrics.upstream_errors.labels(name, "malformed_event").inc(len(upstream.malformed))
    gw.priced(call, name, gw.usage_of(call, name, tally.usage, tally.text))
    call.record.status = status
    if gw.settings.log_text:
        call.record.output = tally.text
    await gw.settle(call)
    if status == "ok":
        await remember(gw, call, tally.completion(name, str(call.record.extra["request_id"])))
    gw.finish(call)
    await upstream.aclose()


async def replay(completion: dict[str, Any]) -> AsyncIterator[StreamEvent]:
    """A cached completion as a stream."""
    for chunk in completion_chunks(completion):
        yield StreamEvent(json.dumps(chunk), chunk)


# -- embeddings -------------------------------------------------------------------------------------------------
async def embed(gw: Gateway, call: Call) -> Answer | None:
    """An embeddings request; None when every upstream failed."""
    assert gw.pool is not None
    pool = gw.pool
    got = await gw.attempt(call, lambda name: pool.embed(name, call.body))
    if got is None:
        return None
    name, result = got
    usage = result.data.get("usage")
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        tokens = int(usage.get("prompt_tokens") or 0)
    else:
        counter = gw.counters[name]
        tokens = sum(counter.count(t) for t in call.prompt)
        call.record.extra["tokens_estimated"] = not counter.exact
    gw.priced(call, name, Usage(tokens, 0))
    call.record.extra["upstream_ms"] = round(result.upstream_ms, 3)
    await gw.settle(call)
    await remember(gw, call, result.data)
    gw.finish(call)
    return Answer(headers={**gw.headers(call.record), "x-truecost-cost-usd": f"{call.record.cost_usd:.8f}"},
                  completion=result.data, body=result.body)
