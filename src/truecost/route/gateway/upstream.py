"""Calls to upstreams over httpx: one pooled async client set per upstream, a small adapter per provider
(OpenAI-compatible, Azure OpenAI, Anthropic), errors classified so the gateway knows when to try elsewhere.

Native adapters rather than each provider's SDK: the gateway needs only the wire format, and the SDKs build a
typed object per response (and per streamed chunk) that the gateway would turn straight back into JSON.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from httpx_sse import EventSource, SSEError

from truecost.route.gateway import anthropic_api
from truecost.route.gateway.settings import UpstreamSettings
from truecost.route.gateway.sse import MalformedEvent, StreamEvent, parse_event

# Statuses worth trying again or elsewhere: the upstream is overloaded, down or timed out, not the request wrong.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass
class UpstreamFailure(Exception):
    """An upstream call that did not produce a usable answer."""

    model: str
    reason: str  # "timeout", "connect", "status", "protocol", "stream"
    message: str
    status_code: int | None = None
    body: bytes = b""
    retry_after_s: float | None = None  # the upstream's own Retry-After, when it sent one

    @property
    def retryable(self) -> bool:
        """Whether another try (here or at the next model) may succeed: yes, unless the request itself was refused."""
        return self.reason != "status" or self.status_code in RETRYABLE_STATUSES

    def __str__(self) -> str:
        return f"{self.model}: {self.message}"


@dataclass
class Completion:
    """A finished, non-streamed upstream answer in OpenAI's shape."""

    body: bytes
    data: dict[str, Any]
    upstream_ms: float


class Adapter:
    """The OpenAI-compatible wire format (vLLM, llama.cpp, Ollama, OpenAI); subclasses change what differs."""

    translates = False  # True when answers are rewritten into OpenAI's shape (so the raw body cannot be reused)

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings

    def headers(self) -> dict[str, str]:
        key = self.settings.resolved_api_key()
        return {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}

    def params(self) -> dict[str, str]:
        return {}

    def path(self, endpoint: str) -> str:
        return f"/{endpoint}"

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "model": self.settings.upstream_model}

    def stream_body(self, body: dict[str, Any]) -> dict[str, Any]:
        # Ask for the final usage chunk so the stream can be priced; dropped again if the client did not ask.
        return {**self.chat_body(body), "stream": True,
                "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}

    def completion(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def chunks(self, data: str) -> list[StreamEvent] | None:
        """The OpenAI chunks one SSE event's data stands for; None at the end of the stream."""
        chunk = parse_event(data)
        return None if chunk is None else [StreamEvent(data, chunk)]


class AzureAdapter(Adapter):
    """Azure OpenAI: the deployment in the path, `api-version` in the query, the key in an `api-key` header."""

    def headers(self) -> dict[str, str]:
        key = self.settings.resolved_api_key()
        return {"Content-Type": "application/json", **({"api-key": key} if key else {})}

    def params(self) -> dict[str, str]:
        return {"api-version": str(self.settings.api_version)}

    def path(self, endpoint: str) -> str:
        return f"/openai/deployments/{self.settings.upstream_model}/{endpoint}"


class AnthropicAdapter(Adapter):
    """Anthropic's Messages API, translated to and from the OpenAI shape."""

    translates = True

    def __init__(self, settings: UpstreamSettings) -> None:
        super().__init__(settings)
        self.translator = anthropic_api.AnthropicToChunks()

    def headers(self) -> dict[str, str]:
        key = self.settings.resolved_api_key()
        return {"Content-Type": "application/json",
                "anthropic-version": self.settings.api_version or anthropic_api.ANTHROPIC_VERSION,
                **({"x-api-key": key} if key else {})}

    def path(self, endpoint: str) -> str:
        return {"chat/completions": "/v1/messages"}.get(endpoint, f"/v1/{endpoint}")

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return anthropic_api.chat_to_messages(body, self.settings.upstream_model)

    def stream_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**self.chat_body(body), "stream": True}

    def completion(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("type") != "message":
            raise ValueError("answer is not an Anthropic message")
        return anthropic_api.message_to_completion(data)

    def chunks(self, data: str) -> list[StreamEvent] | None:
        event = parse_event(data)
        if event is None:
            return None
        return [StreamEvent(json.dumps(c), c) for c in self.translator.feed(event)]


ADAPTERS: dict[str, type[Adapter]] = {"openai": Adapter, "azure": AzureAdapter, "anthropic": AnthropicAdapter}


class _Shards:
    """Several small httpx clients for one upstream, each request on the least busy one.

    httpcore scans every pooled connection for every request it places, so one client with many connections
    spends more CPU per request the busier it gets; small pools keep that scan short (measured on loopback at
    concurrency 16: about half the CPU per request of a single client).
    """

    def __init__(self, make_client: Any, count: int) -> None:
        self.clients: list[httpx.AsyncClient] = [make_client() for _ in range(count)]
        self.in_flight = [0] * count

    def acquire(self) -> int:
        index = min(range(len(self.in_flight)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        return index

    def release(self, index: int) -> None:
        self.in_flight[index] -= 1


@dataclass
class UpstreamStream:
    """An open streamed answer whose first event has arrived and parsed; `aclose()` ends it."""

    name: str
    response: httpx.Response
    first: list[StreamEvent]
    _rest: AsyncIterator[StreamEvent | MalformedEvent]
    _shards: _Shards
    _index: int
    malformed: list[str] = field(default_factory=list)

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Every chunk after the first; malformed events are noted in `malformed` and skipped."""
        async for item in self._rest:
            if isinstance(item, MalformedEvent):
                self.malformed.append(str(item))
                continue
            yield item

    async def aclose(self) -> None:
        try:
            await self.response.aclose()
        finally:
            self._shards.release(self._index)


def _failure(name: str, exc: BaseException, timeout_s: float) -> UpstreamFailure:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return UpstreamFailure(name, "timeout", f"no answer within {timeout_s:g} s")
    return UpstreamFailure(name, "connect", f"{type(exc).__name__}: {exc}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class UpstreamPool:
    """Keep-alive httpx clients per upstream; create inside the event loop, close with `aclose()`."""

    def __init__(self, upstreams: list[UpstreamSettings], *, shards: int = 16, connections_per_shard: int = 16
                 ) -> None:
        self.settings = {u.name: u for u in upstreams}
        self.shards: dict[str, _Shards] = {}
        for upstream in upstreams:
            adapter = ADAPTERS[upstream.provider](upstream)
            timeout = httpx.Timeout(upstream.timeout_s, connect=upstream.connect_timeout_s)
            limits = httpx.Limits(max_connections=connections_per_shard,
                                  max_keepalive_connections=connections_per_shard)
            make_client = functools.partial(httpx.AsyncClient, base_url=upstream.base_url, headers=adapter.headers(),
                                            params=adapter.params(), timeout=timeout, limits=limits, trust_env=False)
            self.shards[upstream.name] = _Shards(make_client, shards)

    def adapter(self, name: str) -> Adapter:
        """A fresh adapter (stream translators keep per-stream state)."""
        settings = self.settings[name]
        return ADAPTERS[settings.provider](settings)

    async def aclose(self) -> None:
        """Close every client's connections."""
        for shards in self.shards.values():
            for client in shards.clients:
                await client.aclose()

    async def _post(self, name: str, endpoint: str, body: dict[str, Any]) -> tuple[httpx.Response, float]:
        shards = self.shards[name]
        index = shards.acquire()
        started = time.perf_counter()
        adapter = self.adapter(name)
        try:
            response = await shards.clients[index].post(adapter.path(endpoint), content=json.dumps(body).encode())
        except httpx.HTTPError as exc:
            raise _failure(name, exc, self.settings[name].timeout_s) from exc
        finally:
            shards.release(index)
        if response.status_code >= 400:
            raise UpstreamFailure(name, "status", f"HTTP {response.status_code}", response.status_code,
                                  response.content, _retry_after(response))
        return response, (time.perf_counter() - started) * 1000

    async def complete(self, name: str, request_body: dict[str, Any]) -> Completion:
        """POST a non-streamed chat completion; raise UpstreamFailure on error, timeout or a bad answer."""
        adapter = self.adapter(name)
        response, upstream_ms = await self._post(name, "chat/completions", adapter.chat_body(request_body))
        try:
            data = adapter.completion(response.json())
        except ValueError as exc:
            raise UpstreamFailure(name, "protocol", "answer is not JSON", response.status_code) from exc
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamFailure(name, "protocol", "answer has no choices", response.status_code)
        body = json.dumps(data).encode() if adapter.translates else response.content
        return Completion(body=body, data=data, upstream_ms=upstream_ms)

    async def embed(self, name: str, request_body: dict[str, Any]) -> Completion:
        """POST an embeddings request (OpenAI-compatible and Azure upstreams)."""
        if self.settings[name].provider == "anthropic":
            raise UpstreamFailure(name, "status", "Anthropic has no embeddings endpoint", 400, b"")
        response, upstream_ms = await self._post(name, "embeddings",
                                                 {**request_body, "model": self.settings[name].upstream_model})
        try:
            data = response.json()
        except ValueError as exc:
            raise UpstreamFailure(name, "protocol", "answer is not JSON", response.status_code) from exc
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise UpstreamFailure(name, "protocol", "answer has no data list", response.status_code)
        return Completion(body=response.content, data=data, upstream_ms=upstream_ms)

    async def open_stream(self, name: str, request_body: dict[str, Any]) -> UpstreamStream:
        """Start a streamed chat completion and wait for its first event to arrive and parse.

        Until then nothing has reached the client, so a stall (no event within `first_event_timeout_s`), a
        broken connection or a first event that is not a chunk is an UpstreamFailure the caller can fall back
        from, exactly like a failed plain request.
        """
        settings = self.settings[name]
        shards = self.shards[name]
        index = shards.acquire()
        adapter = self.adapter(name)
        client = shards.clients[index]
        request = client.build_request("POST", adapter.path("chat/completions"),
                                       content=json.dumps(adapter.stream_body(request_body)).encode())
        response: httpx.Response | None = None
        try:
            response = await client.send(request, stream=True)
            if response.status_code >= 400:
                content = await response.aread()
                raise UpstreamFailure(name, "status", f"HTTP {response.status_code}", response.status_code, content,
                                      _retry_after(response))
            events = _events(EventSource(response), adapter)
            with anyio.fail_after(settings.first_event_timeout_s or settings.timeout_s):
                first = await _first_chunks(name, events)
        except (httpx.HTTPError, TimeoutError) as exc:
            await _abandon(response, shards, index)
            raise _failure(name, exc, settings.first_event_timeout_s or settings.timeout_s) from exc
        except SSEError as exc:
            await _abandon(response, shards, index)
            raise UpstreamFailure(name, "protocol", str(exc)) from exc
        except BaseException:
            await _abandon(response, shards, index)
            raise
        return UpstreamStream(name, response, first, events, shards, index)


async def _abandon(response: httpx.Response | None, shards: _Shards, index: int) -> None:
    """Close a stream that will not be relayed and free its connection slot, even while being cancelled."""
    if response is not None:
        with anyio.CancelScope(shield=True):
            await response.aclose()
    shards.release(index)


async def _events(source: EventSource, adapter: Adapter) -> AsyncIterator[StreamEvent | MalformedEvent]:
    """The stream's chunks in order; a malformed event is yielded as its exception, so the caller decides."""
    async for sse in source.aiter_sse():
        if not sse.data:
            continue
        try:
            chunks = adapter.chunks(sse.data)
        except MalformedEvent as exc:
            yield exc
            continue
        if chunks is None:
            return
        for chunk in chunks:
            yield chunk


async def _first_chunks(name: str, events: AsyncIterator[StreamEvent | MalformedEvent]) -> list[StreamEvent]:
    """The first chunk (as a list), or UpstreamFailure when the stream ends, breaks or starts malformed."""
    async for item in events:
        if isinstance(item, MalformedEvent):
            raise UpstreamFailure(name, "stream", f"first event is malformed ({item})")
        if "error" in item.chunk:
            error = item.chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise UpstreamFailure(name, "stream", f"stream opened with an error: {message}")
        return [item]
    raise UpstreamFailure(name, "stream", "stream ended before its first event")
