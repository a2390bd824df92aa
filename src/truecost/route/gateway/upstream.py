"""Calls to OpenAI-compatible upstreams over httpx: one pooled async client per upstream, errors classified."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from truecost.route.gateway.settings import UpstreamSettings

# Statuses worth trying another model for: the upstream is overloaded, down or timed out, not the request wrong.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class UpstreamFailure(Exception):
    """An upstream call that did not produce a usable answer."""

    model: str
    reason: str  # "timeout", "connect", "status", "protocol"
    message: str
    status_code: int | None = None
    body: bytes = b""

    @property
    def retryable(self) -> bool:
        """Whether the next model should be tried (yes, unless the upstream rejected the request itself)."""
        return self.reason != "status" or self.status_code in RETRYABLE_STATUSES

    def __str__(self) -> str:
        return f"{self.model}: {self.message}"


@dataclass
class Completion:
    """A finished, non-streamed upstream answer."""

    body: bytes
    data: dict[str, Any]
    upstream_ms: float


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
    """An open streamed answer; `aclose()` ends it and frees its connection slot."""

    response: httpx.Response
    _shards: _Shards
    _index: int

    async def aclose(self) -> None:
        try:
            await self.response.aclose()
        finally:
            self._shards.release(self._index)


class UpstreamPool:
    """Keep-alive httpx clients per upstream; create inside the event loop, close with `aclose()`."""

    def __init__(self, upstreams: list[UpstreamSettings], *, shards: int = 16, connections_per_shard: int = 16
                 ) -> None:
        self.settings = {u.name: u for u in upstreams}
        self.shards: dict[str, _Shards] = {}
        for upstream in upstreams:
            headers = {"Content-Type": "application/json"}
            key = upstream.resolved_api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            timeout = httpx.Timeout(upstream.timeout_s, connect=upstream.connect_timeout_s)
            limits = httpx.Limits(max_connections=connections_per_shard,
                                  max_keepalive_connections=connections_per_shard)

            make_client = functools.partial(httpx.AsyncClient, base_url=upstream.base_url, headers=headers,
                                            timeout=timeout, limits=limits, trust_env=False)
            self.shards[upstream.name] = _Shards(make_client, shards)

    async def aclose(self) -> None:
        """Close every client's connections."""
        for shards in self.shards.values():
            for client in shards.clients:
                await client.aclose()

    def _body(self, name: str, request_body: dict[str, Any]) -> bytes:
        return json.dumps({**request_body, "model": self.settings[name].upstream_model}).encode()

    async def complete(self, name: str, request_body: dict[str, Any]) -> Completion:
        """POST a non-streamed chat completion; raise UpstreamFailure on error, timeout or a bad answer."""
        shards = self.shards[name]
        index = shards.acquire()
        started = time.perf_counter()
        try:
            response = await shards.clients[index].post("/chat/completions", content=self._body(name, request_body))
        except httpx.TimeoutException as exc:
            raise UpstreamFailure(name, "timeout", f"no answer within {self.settings[name].timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailure(name, "connect", f"{type(exc).__name__}: {exc}") from exc
        finally:
            shards.release(index)
        upstream_ms = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            raise UpstreamFailure(name, "status", f"HTTP {response.status_code}", response.status_code,
                                  response.content)
        try:
            data = response.json()
        except ValueError as exc:
            raise UpstreamFailure(name, "protocol", "answer is not JSON", response.status_code) from exc
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamFailure(name, "protocol", "answer has no choices", response.status_code)
        return Completion(body=response.content, data=data, upstream_ms=upstream_ms)

    async def open_stream(self, name: str, request_body: dict[str, Any]) -> UpstreamStream:
        """Start a streamed chat completion; returns once the upstream's status is known (2xx), body unread."""
        shards = self.shards[name]
        index = shards.acquire()
        client = shards.clients[index]
        body = {**request_body, "stream": True,
                "stream_options": {**(request_body.get("stream_options") or {}), "include_usage": True}}
        request = client.build_request("POST", "/chat/completions", content=self._body(name, body))
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            shards.release(index)
            raise UpstreamFailure(name, "timeout", f"no answer within {self.settings[name].timeout_s:g} s") from exc
        except BaseException as exc:
            shards.release(index)
            if isinstance(exc, httpx.HTTPError):
                raise UpstreamFailure(name, "connect", f"{type(exc).__name__}: {exc}") from exc
            raise
        stream = UpstreamStream(response, shards, index)
        if response.status_code >= 400:
            try:
                content = await response.aread()
            except httpx.HTTPError:
                content = b""
            finally:
                await stream.aclose()
            raise UpstreamFailure(name, "status", f"HTTP {response.status_code}", response.status_code, content)
        return stream
