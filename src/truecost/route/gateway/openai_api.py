"""The OpenAI wire format at the gateway's edge: request shapes, error bodies and the models list."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ChatMessage(BaseModel):
    """One message; fields beyond role and content (name, tool_calls, ...) pass through untouched."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class EmbeddingsRequest(BaseModel):
    """The fields the gateway reads from an embeddings request."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        """The text inputs (token-id inputs count by their length)."""
        if isinstance(self.input, str):
            return [self.input]
        return [item if isinstance(item, str) else " " * len(item) if isinstance(item, list) else " "
                for item in self.input]


class ChatRequest(BaseModel):
    """The fields the gateway reads from a chat completion request; every other field goes upstream as sent."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    user: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def completion_limit(self) -> int | None:
        """The most completion tokens the client allows (None: not said)."""
        return self.max_completion_tokens or self.max_tokens

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


def prompt_texts(request: ChatRequest) -> list[str]:
    """The text of every message, for counting prompt tokens."""
    return [message_text(m) for m in request.messages]


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


def rate_limited(message: str, retry_after_s: float, *, code: str, type_: str = "rate_limit_exceeded",
                 status_code: int = 429) -> JSONResponse:
    """A 429 (or 503) with Retry-After in whole seconds, rounded up, as OpenAI sends it."""
    seconds = max(1, int(retry_after_s + 0.999))
    return error_response(status_code, message, type_=type_, code=code,
                          headers={"retry-after": str(seconds), "retry-after-ms": str(int(retry_after_s * 1000))})


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
