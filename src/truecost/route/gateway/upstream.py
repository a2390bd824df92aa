"""Calls to OpenAI-compatible upstreams over httpx: one pooled async client per upstream, errors classified."""

from __future__ import annotations

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
        return self.status_code is None or self.status_code in RETRYABLE_STATUSES

    def __str__(self) -> str:
        return f"{self.model}: {self.message}"


@dataclass
class Completion:
    """A finished, non-streamed upstream answer."""

    body: bytes
    data: dict[str, Any]
    upstream_ms: float


class UpstreamPool:
    """One keep-alive httpx client per upstream; create inside the event loop, close with `aclose()`."""

    def __init__(self, upstreams: list[UpstreamSettings], *, max_connections: int = 256) -> None:
        self.settings = {u.name: u for u in upstreams}
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.clients: dict[str, httpx.AsyncClient] = {}
        for upstream in upstreams:
            headers = {"Content-Type": "application/json"}
            key = upstream.resolved_api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            timeout = httpx.Timeout(upstream.timeout_s, connect=upstream.connect_timeout_s)
            self.clients[upstream.name] = httpx.AsyncClient(base_url=upstream.base_url, headers=headers,
                                                            timeout=timeout, limits=limits, trust_env=False)

    async def aclose(self) -> None:
        """Close every client's connections."""
        for client in self.clients.values():
            await client.aclose()

    def _body(self, name: str, request_body: dict[str, Any]) -> bytes:
        return json.dumps({**request_body, "model": self.settings[name].upstream_model}).encode()

    async def complete(self, name: str, request_body: dict[str, Any]) -> Completion:
        """POST a non-streamed chat completion; raise UpstreamFailure on error, timeout or a bad answer."""
        client = self.clients[name]
        started = time.perf_counter()
        try:
            response = await client.post("/chat/completions", content=self._body(name, request_body))
        except httpx.TimeoutException as exc:
            raise UpstreamFailure(name, "timeout", f"no answer within {self.settings[name].timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailure(name, "connect", f"{type(exc).__name__}: {exc}") from exc
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

    async def open_stream(self, name: str, request_body: dict[str, Any]) -> httpx.Response:
        """Start a streamed chat completion; returns once the upstream's status is known (2xx), body unread."""
        client = self.clients[name]
        body = {**request_body, "stream": True,
                "stream_options": {**(request_body.get("stream_options") or {}), "include_usage": True}}
        request = client.build_request("POST", "/chat/completions", content=self._body(name, body))
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamFailure(name, "timeout", f"no answer within {self.settings[name].timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailure(name, "connect", f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                content = await response.aread()
            except httpx.HTTPError:
                content = b""
            await response.aclose()
            raise UpstreamFailure(name, "status", f"HTTP {response.status_code}", response.status_code, content)
        return response
