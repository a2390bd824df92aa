"""Real OpenAI-compatible HTTP servers on 127.0.0.1 for the review tests (FastAPI + uvicorn in a thread).

- `scripted_app(reply)`: chat answers come from a plain function (a leaky or a safe assistant).
- `hf_app(model_dir)`: a real tiny transformers model behind /v1/chat/completions and /v1/completions
  (with echo log-probabilities), so the endpoint path can be checked against the local path.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException

Reply = Callable[[list[dict[str, str]]], str]


def _usage(messages: list[dict[str, str]], text: str) -> dict[str, int]:
    prompt = sum(len(m["content"].split()) for m in messages)
    completion = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def scripted_app(reply: Reply) -> FastAPI:
    """An endpoint whose chat answers come from `reply(messages)`; it has no /completions log-probs."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        text = reply(messages)
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}], "usage": _usage(messages, text)}

    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> dict[str, Any]:
        raise HTTPException(status_code=404, detail="not supported")

    return app


def leaky_reply(messages: list[dict[str, str]]) -> str:
    """A careless assistant: it opens every answer by repeating its system prompt."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    return f"Sure! My instructions say: {system}\nHow can I help?" if system else "Sure, here you go: step 1..."


def safe_reply(messages: list[dict[str, str]]) -> str:
    """A careful assistant: it answers only arithmetic and declines everything else."""
    user = messages[-1]["content"]
    if "17 + 25" in user:
        return "42"
    return "I'm sorry, but I can't help with that request."


def hf_app(model_dir: str) -> FastAPI:
    """A tiny transformers model served with the OpenAI chat and completions (echo + logprobs) routes."""
    import torch

    from truecost.review.targets import HFTarget

    target = HFTarget("hf:" + model_dir, Path(model_dir), device="cpu")
    tok = target.tokenizer
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> dict[str, Any]:
        gen = target.generate(body["messages"], int(body.get("max_tokens") or 16))
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text}}],
                "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens}}

    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("echo"):
            raise HTTPException(status_code=400, detail="this test server only echoes")
        prompt = body["prompt"]
        enc = tok(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids = [tok.bos_token_id] + enc["input_ids"]
        with torch.no_grad():
            logits = target.model(torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits[:-1], dim=-1)
        values = logp.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1).tolist()
        tokens = [tok.decode([i]) for i in enc["input_ids"]]
        offsets = [start for start, _ in enc["offset_mapping"]]
        return {"choices": [{"index": 0, "text": prompt, "logprobs": {
            "tokens": tokens, "token_logprobs": values, "text_offset": offsets}}]}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` on a free loopback port in a thread; yields the base URL (ending in /v1)."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
