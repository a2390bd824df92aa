"""Streamed answers: server-sent events read with httpx-sse, each one parsed into an OpenAI chunk and tallied.

httpx-sse splits the byte stream into events by the SSE specification (CR, LF and CRLF line ends; one optional
space after the colon); this module decides what each event means for the gateway: a chunk to forward, the end
(`[DONE]`), an error the upstream reported, or a malformed event, which is counted and never forwarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StreamEvent:
    """One upstream event as an OpenAI chunk: `data` is the JSON text forwarded to OpenAI clients."""

    data: str
    chunk: dict[str, Any]


class MalformedEvent(ValueError):
    """An event whose data is not a JSON object (nor `[DONE]`)."""


DONE = "[DONE]"


def parse_event(data: str) -> dict[str, Any] | None:
    """The chunk an event's data holds; None for `[DONE]`; MalformedEvent for anything else."""
    if data.strip() == DONE:
        return None
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise MalformedEvent(f"event data is not JSON: {data[:80]!r}") from exc
    if not isinstance(chunk, dict):
        raise MalformedEvent(f"event data is not a JSON object: {data[:80]!r}")
    return chunk


def is_usage_only(chunk: dict[str, Any]) -> bool:
    """The final chunk the gateway asks for on its own behalf: usage and no choices."""
    return isinstance(chunk.get("usage"), dict) and not chunk.get("choices")


@dataclass
class StreamTally:
    """What a relayed stream said about itself: token usage (when the upstream sent it) and the output text."""

    usage: dict[str, Any] | None = None
    text_parts: list[str] = field(default_factory=list)
    output_chars: int = 0
    events: int = 0
    malformed: int = 0
    error: str | None = None
    finish_reason: str | None = None
    keep_text: bool = False

    @property
    def text(self) -> str:
        """The streamed output text, joined."""
        return "".join(self.text_parts)

    def add(self, chunk: dict[str, Any]) -> None:
        """Count one chunk: its usage, text and finish reason, or the error it reports."""
        self.events += 1
        if "error" in chunk:
            error = chunk["error"]
            self.error = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                self.output_chars += len(content)
                if self.keep_text:
                    self.text_parts.append(content)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])

    def completion(self, model: str, request_id: str) -> dict[str, Any]:
        """The stream as one chat completion (for the cache); needs keep_text."""
        return {"id": request_id, "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                             "finish_reason": self.finish_reason or "stop"}],
                "usage": self.usage}


def completion_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole chat completion replayed as stream chunks (a cached answer to a streamed request)."""
    base = {"id": completion.get("id", ""), "object": "chat.completion.chunk", "created": completion.get("created", 0),
            "model": completion.get("model", "")}
    out = []
    for choice in completion.get("choices") or []:
        message = choice.get("message") or {}
        delta = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
        out.append({**base, "choices": [{"index": choice.get("index", 0), "delta": delta, "finish_reason": None}]})
        out.append({**base, "choices": [{"index": choice.get("index", 0), "delta": {},
                                         "finish_reason": choice.get("finish_reason", "stop")}]})
    if isinstance(completion.get("usage"), dict):
        out.append({**base, "choices": [], "usage": completion["usage"]})
    return out
