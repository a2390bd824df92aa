"""Calls to upstreams over aiohttp: one pooled session per upstream, a small adapter per provider
(OpenAI-compatible, Azure OpenAI, Anthropic), errors classified so the gateway knows when to try elsewhere.

Native adapters rather than each provider's SDK: the gateway needs only the wire format, and the SDKs build a
typed object per response (and per streamed chunk) that the gateway would turn straight back into JSON.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
import httpx
import yarl
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


class StreamBroken(Exception):
    """An upstream's streamed body broke off (connection lost, read timeout) after its headers arrived."""


class _BodyStream(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx byte stream, so `httpx-sse` parses its events (its tested parser:
    CR, LF and CRLF line ends); a broken connection or read timeout becomes StreamBroken."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StreamBroken(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        self.response.release()  # back to the pool when read to its end, else the connection is closed


@dataclass
class UpstreamStream:
    """An open streamed answer whose first event has arrived and parsed; `aclose()` ends it."""

    name: str
    response: aiohttp.ClientResponse
    first: list[StreamEvent]
    _rest: AsyncIterator[StreamEvent | MalformedEvent]
    malformed: list[str] = field(default_factory=list)

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Every chunk after the first; malformed events are noted in `malformed` and skipped."""
        async for item in self._rest:
            if isinstance(item, MalformedEvent):
                self.malformed.append(str(item))
                continue
            yield item

    async def aclose(self) -> None:
        self.response.release()


def _failure(name: str, exc: BaseException, timeout_s: float) -> UpstreamFailure:
    if isinstance(exc, TimeoutError):  # aiohttp's connect and read timeouts are TimeoutErrors too
        return UpstreamFailure(name, "timeout", f"no answer within {timeout_s:g} s")
    return UpstreamFailure(name, "connect", f"{type(exc).__name__}: {exc}")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every upstream: loading the CA bundle takes ~0.1 s of CPU each time."""
    return ssl.create_default_context()


class UpstreamPool:
    """One keep-alive aiohttp session per upstream; create inside the event loop, close with `aclose()`.

    aiohttp rather than httpx on this path: on loopback at concurrency 16 an httpx request took 1.66 ms of CPU
    and an aiohttp one 0.28 ms (bench run 2026-12-06), and the upstream call was 40% of the gateway's CPU.
    """

    def __init__(self, upstreams: list[UpstreamSettings], *, connections: int = 256) -> None:
        self.settings = {u.name: u for u in upstreams}
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self._urls: dict[tuple[str, str], yarl.URL] = {}
        for upstream in upstreams:
            adapter = ADAPTERS[upstream.provider](upstream)
            # Like httpx's timeouts: `timeout_s` for the pool and between reads, `connect_timeout_s` to connect.
            timeout = aiohttp.ClientTimeout(total=None, connect=upstream.timeout_s,
                                            sock_connect=upstream.connect_timeout_s, sock_read=upstream.timeout_s)
            tls = _tls_context() if upstream.base_url.startswith("https://") else None
            connector = aiohttp.TCPConnector(limit=connections, ssl=tls if tls is not None else True)
            self.sessions[upstream.name] = aiohttp.ClientSession(
                headers=adapter.headers(), timeout=timeout, connector=connector, trust_env=False)

    def adapter(self, name: str) -> Adapter:
        """A fresh adapter (stream translators keep per-stream state)."""
        settings = self.settings[name]
        return ADAPTERS[settings.provider](settings)

    def url(self, name: str, adapter: Adapter, endpoint: str) -> yarl.URL:
        """The endpoint's full URL with the adapter's query, parsed once."""
        url = self._urls.get((name, endpoint))
        if url is None:
            base = self.settings[name].base_url.rstrip("/")
            url = yarl.URL(base + adapter.path(endpoint)).update_query(adapter.params())
            self._urls[(name, endpoint)] = url
        return url

    async def aclose(self) -> None:
        """Close every session's connections."""
        for session in self.sessions.values():
            await session.close()

    async def _post(self, name: str, adapter: Adapter, endpoint: str, body: dict[str, Any]) -> tuple[bytes, float]:
        started = time.perf_counter()
        try:
            async with self.sessions[name].post(self.url(name, adapter, endpoint), data=json.dumps(body).encode()
                                                ) as response:
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _failure(name, exc, self.settings[name].timeout_s) from exc
        if response.status >= 400:
            raise UpstreamFailure(name, "status", f"HTTP {response.status}", response.status, content,
                                  _retry_after(response.headers))
        return content, (time.perf_counter() - started) * 1000

    async def complete(self, name: str, request_body: dict[str, Any]) -> Completion:
        """POST a non-streamed chat completion; raise UpstreamFailure on error, timeout or a bad answer."""
        adapter = self.adapter(name)
        content, upstream_ms = await self._post(name, adapter, "chat/completions", adapter.chat_body(request_body))
        try:
            data = adapter.completion(json.loads(content))
        except ValueError as exc:
            raise UpstreamFailure(name, "protocol", "answer is not JSON", 200) from exc
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamFailure(name, "protocol", "answer has no choices", 200)
        body = json.dumps(data).encode() if adapter.translates else content
        return Completion(body=body, data=data, upstream_ms=upstream_ms)

    async def embed(self, name: str, request_body: dict[str, Any]) -> Completion:
        """POST an embeddings request (OpenAI-compatible and Azure upstreams)."""
        if self.settings[name].provider == "anthropic":
            raise UpstreamFailure(name, "status", "Anthropic has no embeddings endpoint", 400, b"")
        content, upstream_ms = await self._post(name, self.adapter(name), "embeddings",
                                                {**request_body, "model": self.settings[name].upstream_model})
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise UpstreamFailure(name, "protocol", "answer is not JSON", 200) from exc
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise UpstreamFailure(name, "protocol", "answer has no data list", 200)
        return Completion(body=content, data=data, upstream_ms=upstream_ms)

    async def open_stream(self, name: str, request_body: dict[str, Any]) -> UpstreamStream:
        """Start a streamed chat completion and wait for its first event to arrive and parse.

        Until then nothing has reached the client, so a stall (no event within `first_event_timeout_s`), a
        broken connection or a first event that is not a chunk is an UpstreamFailure the caller can fall back
        from, exactly like a failed plain request.
        """
        settings = self.settings[name]
        adapter = self.adapter(name)
        wait_s = settings.first_event_timeout_s or settings.timeout_s
        response: aiohttp.ClientResponse | None = None
        try:
            response = await self.sessions[name].post(self.url(name, adapter, "chat/completions"),
                                                      data=json.dumps(adapter.stream_body(request_body)).encode())
            if response.status >= 400:
                content = await response.read()
                raise UpstreamFailure(name, "status", f"HTTP {response.status}", response.status, content,
                                      _retry_after(response.headers))
            body = httpx.Response(response.status, headers=list(response.headers.items()),
                                  stream=_BodyStream(response))
            events = _events(EventSource(body), adapter)
            with anyio.fail_after(wait_s):
                first = await _first_chunks(name, events)
        except (aiohttp.ClientError, StreamBroken, TimeoutError) as exc:
            _abandon(response)
            raise _failure(name, exc, wait_s) from exc
        except SSEError as exc:
            _abandon(response)
            raise UpstreamFailure(name, "protocol", str(exc)) from exc
        except BaseException:
            _abandon(response)
            raise
        return UpstreamStream(name, response, first, events)


def _abandon(response: aiohttp.ClientResponse | None) -> None:
    """Close a stream that will not be relayed (its connection is not reused)."""
    if response is not None:
        response.close()


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
