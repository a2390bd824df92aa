"""A real OpenAI-compatible HTTP server on 127.0.0.1 (FastAPI + uvicorn in a thread) with deterministic replies.

It answers synth's built-in templates the way a well-behaved model would: a Q/A pair whose answer is the
document's first sentence, a new instruction, a paraphrase, a judge's score. It can fail its first requests
(HTTP 500) to exercise retries, sleep per request to exercise concurrency, and it counts what it served.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse


@dataclass
class ServerState:
    """What the server was asked to do and what it did."""

    fail_first: int = 0
    delay_s: float = 0.0
    judge_score: int = 8
    omit_usage: bool = False
    requests: int = 0
    failures: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    prompts: list[str] = field(default_factory=list)


def first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", " ".join(text.split()))
    return match.group(1) if match else " ".join(text.split()[:20])


def reply_to(user: str, state: ServerState) -> str:
    """The deterministic reply to one prompt of synth's built-in templates."""
    doc = re.search(r"Read this text:\n\n(.*)\n\nWrite one question", user, re.DOTALL)
    if doc:
        subject = doc.group(1).split()[1].strip(",.")
        return f"Question: What does the passage explain about the {subject}?\nAnswer: {first_sentence(doc.group(1))}"
    if "Rate the answer" in user:
        return str(state.judge_score)
    if "Write one new task" in user:
        tag = hashlib.sha1(user.encode()).hexdigest()[:6]
        return f"Instruction: Explain how the program with code {tag} handles errors and what it returns."
    if user.startswith("Rewrite the following request"):
        text = user.split("\n\n", 1)[1]
        return f"Could you please do this for me: {text}"
    return "Here is a careful answer: first read the input, then check each case, and finally return the result."


def make_app(state: ServerState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> Any:
        state.requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.delay_s:
                await asyncio.sleep(state.delay_s)
            if state.failures < state.fail_first:
                state.failures += 1
                return JSONResponse({"error": {"message": "temporarily overloaded"}}, status_code=500)
            user = body["messages"][-1]["content"]
            state.prompts.append(user)
            text = reply_to(user, state)
            prompt = sum(len(m["content"].split()) for m in body["messages"])
            completion = min(len(text.split()), int(body.get("max_tokens") or 10_000))
            out: dict[str, Any] = {"id": "x", "object": "chat.completion", "model": body["model"],
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                "finish_reason": "stop"}]}
            if not state.omit_usage:
                out["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                "total_tokens": prompt + completion}
            return out
        finally:
            state.in_flight -= 1

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(state: ServerState | None = None) -> Iterator[tuple[str, ServerState]]:
    """(base URL ending in /v1, state) of a server running for the `with` block (review's server runner)."""
    from tests.review.servers import serve as run_app

    state = state or ServerState()
    with run_app(make_app(state)) as url:
        yield url, state
