"""Real HTTP servers on 127.0.0.1 for the gateway tests: scripted OpenAI-compatible upstreams and the gateway.

Each runs under uvicorn in a thread, on a port the OS picks, and stops when its context exits.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


def words(text: str) -> int:
    """The fake upstreams' tokeniser: one token per whitespace-separated word."""
    return len(text.split())


@dataclass
class FakeUpstream:
    """How one scripted upstream behaves, and what it received."""

    name: str
    fail_status: int | None = None  # answer every request with this HTTP status
    delay_s: float = 0.0  # wait this long before answering
    break_stream_after: int | None = None  # drop the connection after this many streamed words
    send_usage: bool = True
    word_delay_s: float = 0.0  # pause between streamed words
    garbage: bool = False  # answer 200 with a body that is not a chat completion
    received: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, body: dict[str, Any]) -> str:
        """The reply text: names the upstream and echoes the last message's length, so tests can tell who answered."""
        last = body["messages"][-1].get("content") or ""
        return f"{self.name} answers a {len(str(last))} character prompt"

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        return sum(words(str(m.get("content") or "")) for m in body["messages"])


def fake_upstream_app(spec: FakeUpstream) -> FastAPI:
    """A small OpenAI-compatible chat completions server following `spec`."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        spec.received.append(body)
        if spec.delay_s:
            await asyncio.sleep(spec.delay_s)
        if spec.fail_status is not None:
            return JSONResponse({"error": {"message": f"{spec.name} is failing on purpose", "type": "server_error",
                                           "param": None, "code": None}}, status_code=spec.fail_status)
        if spec.garbage:
            return Response(b"<html>proxy error page</html>", media_type="text/html")
        text = spec.answer(body)
        usage = {"prompt_tokens": spec.prompt_tokens(body), "completion_tokens": words(text),
                 "total_tokens": spec.prompt_tokens(body) + words(text)}
        base = {"id": f"chatcmpl-{spec.name}", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            doc: dict[str, Any] = {**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
            if spec.send_usage:
                doc["usage"] = usage
            return JSONResponse(doc)

        async def events() -> AsyncIterator[bytes]:
            chunk = {**base, "object": "chat.completion.chunk"}
            for i, word in enumerate(text.split(" ")):
                if spec.break_stream_after is not None and i >= spec.break_stream_after:
                    raise RuntimeError("upstream breaks the stream on purpose")
                if spec.word_delay_s:
                    await asyncio.sleep(spec.word_delay_s)
                delta = {"content": word if i == 0 else " " + word}
                yield f"data: {json.dumps({**chunk, 'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode()
            done = {"index": 0, "delta": {}, "finish_reason": "stop"}
            yield f"data: {json.dumps({**chunk, 'choices': [done]})}\n\n".encode()
            if spec.send_usage and (body.get("stream_options") or {}).get("include_usage"):
                yield f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


class ThreadServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


@contextmanager
def serving(app: Any) -> Iterator[ThreadServer]:
    """Serve `app` for the duration of the block."""
    server = ThreadServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def upstreams(*specs: FakeUpstream) -> Iterator[dict[str, ThreadServer]]:
    """Serve several scripted upstreams; yields name -> server."""
    servers: dict[str, ThreadServer] = {}
    try:
        for spec in specs:
            servers[spec.name] = ThreadServer(fake_upstream_app(spec)).start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
