"""The OpenAI wire format at the gateway's edge: request shapes, error bodies and the models list."""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ChatMessage(BaseModel):
    """One message; fields beyond role and content (name, tool_calls, ...) pass through untouched."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The fields the gateway reads from a chat completion request; every other field goes upstream as sent."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    @property
    def wants_usage_in_stream(self) -> bool:
        """Whether the client itself asked for the final usage chunk of a stream."""
        return bool((self.stream_options or {}).get("include_usage"))


def message_text(message: ChatMessage) -> str:
    """The text of a message, whether given as a string or as content parts."""
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):
        return "\n".join(str(part.get("text", "")) for part in message.content
                         if isinstance(part, dict) and part.get("type") == "text")
    return ""


CHARS_PER_TOKEN = 4.0
"""OpenAI's rule of thumb for English text; used only when an upstream reports no token usage."""


def estimate_tokens(chars: int) -> int:
    """Tokens in `chars` characters of text, roughly (see CHARS_PER_TOKEN)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def prompt_chars(request: ChatRequest) -> int:
    """Characters of text in all messages, for estimating prompt tokens."""
    return sum(len(message_text(m)) for m in request.messages)


def routing_prompt(request: ChatRequest) -> str:
    """What the router judges: the last user message (the question being asked now)."""
    for message in reversed(request.messages):
        if message.role == "user":
            return message_text(message)
    return message_text(request.messages[-1])


def error_response(status_code: int, message: str, *, type_: str = "invalid_request_error",
                   param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in OpenAI's shape, which the official clients turn into typed exceptions."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def validation_error_response(exc: ValidationError) -> JSONResponse:
    """A 400 naming the first bad field, e.g. `messages.0.role: Input should be 'system', ...`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = f"{where}: {first['msg']}" if where else first["msg"]
    return error_response(400, message, param=where or None, code="invalid_value")


def models_list(names: list[str]) -> dict[str, Any]:
    """The body of GET /v1/models."""
    created = int(time.time())
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": created, "owned_by": "truecost"} for name in names]}
