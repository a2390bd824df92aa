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
    # Streams: of every 25 requests, numbers 0-1 stall before their first event and 2-3 break it (16%).
    first_event_faults: bool = False
    stall_s: float = 5.0
    malformed_middle: bool = False  # put one event that is not JSON in the middle of each stream
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

        number = len(spec.received) - 1
        fault = number % 25 if spec.first_event_faults else None

        async def events() -> AsyncIterator[bytes]:
            chunk = {**base, "object": "chat.completion.chunk"}
            if fault in (0, 1):
                await asyncio.sleep(spec.stall_s)  # connected, headers sent, then nothing
            if fault == 2:
                yield b"data: {\"choices\": [{\"delta\": \n\n"  # a broken first event
                return
            if fault == 3:
                raise RuntimeError("upstream drops the connection before its first event")
            for i, word in enumerate(text.split(" ")):
                if spec.malformed_middle and i == 2:
                    yield b"data: <not json>\n\n"
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

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body = await request.json()
        spec.received.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [float(len(str(x))), 1.0]}
                for i, x in enumerate(inputs)]
        return JSONResponse({"object": "list", "model": body["model"], "data": data,
                             "usage": {"prompt_tokens": sum(words(str(x)) for x in inputs),
                                       "total_tokens": sum(words(str(x)) for x in inputs)}})

    return app


def fake_anthropic_app(spec: FakeUpstream) -> FastAPI:
    """A small Anthropic Messages server following `spec` (text answers, streamed or not)."""
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body = await request.json()
        spec.received.append({**body, "_headers": dict(request.headers)})
        if spec.fail_status is not None:
            return JSONResponse({"type": "error", "error": {"type": "overloaded_error", "message": "failing"}},
                                status_code=spec.fail_status)
        last = body["messages"][-1]["content"]
        last_text = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
        text = f"{spec.name} answers a {len(last_text)} character prompt"
        prompt = sum(words(m["content"] if isinstance(m["content"], str) else
                           " ".join(b.get("text", "") for b in m["content"])) for m in body["messages"])
        prompt += words(str(body.get("system") or ""))
        usage = {"input_tokens": prompt, "output_tokens": words(text)}
        if not body.get("stream"):
            return JSONResponse({"id": f"msg_{spec.name}", "type": "message", "role": "assistant",
                                 "model": body["model"], "content": [{"type": "text", "text": text}],
                                 "stop_reason": "end_turn", "stop_sequence": None, "usage": usage})

        def event(kind: str, data: dict[str, Any]) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        async def events() -> AsyncIterator[bytes]:
            yield event("message_start", {"message": {"id": f"msg_{spec.name}", "type": "message", "role": "assistant",
                                                      "model": body["model"], "content": [], "stop_reason": None,
                                                      "usage": {"input_tokens": prompt, "output_tokens": 1}}})
            yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield event("ping", {})
            for i, word in enumerate(text.split(" ")):
                yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                                          "text": word if i == 0 else " " + word}})
            yield event("content_block_stop", {"index": 0})
            yield event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                          "usage": {"output_tokens": words(text)}})
            yield event("message_stop", {})

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
        deadline = time.monotonic() + 90  # a gateway loading an embedder on a loaded machine takes a while
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
def upstreams(*specs: FakeUpstream, anthropic: tuple[str, ...] = ()) -> Iterator[dict[str, ThreadServer]]:
    """Serve several scripted upstreams (OpenAI-compatible, or Anthropic for the names in `anthropic`)."""
    servers: dict[str, ThreadServer] = {}
    try:
        for spec in specs:
            make = fake_anthropic_app if spec.name in anthropic else fake_upstream_app
            servers[spec.name] = ThreadServer(make(spec)).start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server (Debian's package) on a free loopback port, no persistence."""

    def __init__(self) -> None:
        import shutil

        self.binary = shutil.which("redis-server")
        self.process: Any = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import subprocess

        if self.binary is None:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--protected-mode", "yes"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def wait_healthy(process: Any, url: str, timeout_s: float = 120) -> None:
    """Wait until a gateway started as `process` answers GET {url}/healthz; fail if it exits first."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gateway did not come up"
        time.sleep(0.2)
