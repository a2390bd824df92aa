"""Server-sent events from an OpenAI-compatible stream: split into events, read usage and text, pass them on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamTally:
    """What a relayed stream said about itself: token usage (when the upstream sent it) and the output text."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    text_parts: list[str] = field(default_factory=list)
    output_chars: int = 0
    events: int = 0
    error: str | None = None
    done: bool = False

    @property
    def text(self) -> str:
        """The streamed output text, joined."""
        return "".join(self.text_parts)


class SSERelay:
    """Splits upstream bytes into whole SSE events, tallies them and yields the ones to forward.

    `drop_usage_only`: the gateway asks every upstream to include usage so it can price the request; when the
    client did not ask for that final usage-only chunk, it is dropped so the client sees what it asked for.
    """

    def __init__(self, *, drop_usage_only: bool, keep_text: bool) -> None:
        self.drop_usage_only = drop_usage_only
        self.keep_text = keep_text
        self.tally = StreamTally()
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Whole events completed by `chunk`, each ending in a blank line, ready to forward."""
        self._buffer += chunk
        if b"\r" in self._buffer:
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        out = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                break
            event, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            if self._inspect(event):
                out.append(event + b"\n\n")
        return out

    def flush(self) -> list[bytes]:
        """The last event when the upstream closed without a trailing blank line."""
        event, self._buffer = self._buffer.strip(b"\n"), b""
        if event and self._inspect(event):
            return [event + b"\n\n"]
        return []

    def _inspect(self, event: bytes) -> bool:
        """Tally one event; False when it should not be forwarded."""
        data_lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
        if not data_lines:
            return True
        payload = b"\n".join(data_lines)
        self.tally.events += 1
        if payload.strip() == b"[DONE]":
            self.tally.done = True
            return True
        try:
            chunk: Any = json.loads(payload)
        except ValueError:
            return True
        if not isinstance(chunk, dict):
            return True
        if "error" in chunk:
            error = chunk["error"]
            self.tally.error = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.tally.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.tally.completion_tokens = int(usage.get("completion_tokens") or 0)
        choices = chunk.get("choices") or []
        for choice in choices:
            content = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(content, str):
                self.tally.output_chars += len(content)
                if self.keep_text:
                    self.tally.text_parts.append(content)
        return not (self.drop_usage_only and isinstance(usage, dict) and not choices)
