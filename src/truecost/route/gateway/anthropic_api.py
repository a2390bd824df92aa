"""Anthropic's Messages API translated to and from the OpenAI chat shape the gateway routes internally.

Four pure translations (request and response, each way) and two stream translators: Anthropic's events into
OpenAI chunks (an Anthropic upstream) and OpenAI chunks into Anthropic's events (a client of `/v1/messages`).
Text, system prompts, images (base64), tools and tool results, stop sequences and usage (cache reads included)
carry over; fields one side has and the other lacks (top_k, logprobs) are dropped.
"""

from __future__ import annotations

import json
from typing import Any

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI-shaped requests often leave it out

_STOP_TO_OPENAI = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                   "pause_turn": "stop", "refusal": "content_filter"}
_STOP_TO_ANTHROPIC = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                      "function_call": "tool_use", "content_filter": "refusal"}


# -- requests ---------------------------------------------------------------------------------------------------
def _text_of(content: Any) -> str:
    """The text of an Anthropic or OpenAI content value: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _blocks_to_openai(role: str, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Anthropic message's content blocks as OpenAI messages (tool results become `tool` messages)."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image" and (block.get("source") or {}).get("type") == "base64":
            source = block["source"]
            parts.append({"type": "image_url",
                          "image_url": {"url": f"data:{source.get('media_type')};base64,{source.get('data')}"}})
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})}})
        elif kind == "tool_result":
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                        "content": _text_of(block.get("content"))})
    if parts or calls:
        only_text = all(p["type"] == "text" for p in parts)
        message: dict[str, Any] = {"role": role,
                                   "content": "".join(p["text"] for p in parts) if only_text else parts}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def _tools_to_openai(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.get("name"), "description": t.get("description", ""),
                                              "parameters": t.get("input_schema") or {"type": "object"}}}
            for t in tools]


def _tool_choice_to_openai(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return {"any": "required", "none": "none"}.get(str(kind), "auto")


def messages_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI chat completion request."""
    messages: list[dict[str, Any]] = []
    system = _text_of(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            messages += _blocks_to_openai(message.get("role", "user"), content)
        else:
            messages.append({"role": message.get("role", "user"), "content": content})
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for name in ("max_tokens", "temperature", "top_p", "stream"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    if body.get("tools"):
        chat["tools"] = _tools_to_openai(body["tools"])
    if isinstance(body.get("tool_choice"), dict):
        chat["tool_choice"] = _tool_choice_to_openai(body["tool_choice"])
    return chat


def _openai_to_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One OpenAI message's content (and tool calls) as Anthropic content blocks."""
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                blocks.append({"type": "text", "text": part.get("text", "")})
            elif part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                if url.startswith("data:") and ";base64," in url:
                    media, data = url[5:].split(";base64,", 1)
                    blocks.append({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments})
    return blocks


def chat_to_messages(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion request as an Anthropic Messages request for `model`."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in chat.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content")))
        elif role == "tool":
            block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                     "content": _text_of(message.get("content"))}
            messages.append({"role": "user", "content": [block]})
        else:
            messages.append({"role": "assistant" if role == "assistant" else "user",
                             "content": _openai_to_blocks(message)})
    body: dict[str, Any] = {"model": model, "messages": messages,
                            "max_tokens": chat.get("max_tokens") or chat.get("max_completion_tokens")
                            or DEFAULT_MAX_TOKENS}
    if system:
        body["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p", "stream"):
        if chat.get(name) is not None:
            body[name] = chat[name]
    stop = chat.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if chat.get("user"):
        body["metadata"] = {"user_id": str(chat["user"])}
    if chat.get("tools"):
        body["tools"] = [{"name": t["function"].get("name"), "description": t["function"].get("description", ""),
                          "input_schema": t["function"].get("parameters") or {"type": "object"}}
                         for t in chat["tools"] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    return body


# -- responses --------------------------------------------------------------------------------------------------
def usage_to_openai(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage as OpenAI's: prompt tokens include cache reads and writes, reported as cached tokens."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def usage_to_anthropic(usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage as Anthropic's (cached prompt tokens become cache reads)."""
    usage = usage or {}
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": int(usage.get("prompt_tokens") or 0) - cached, "cache_read_input_tokens": cached,
            "output_tokens": int(usage.get("completion_tokens") or 0)}


def message_to_completion(message: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages response as an OpenAI chat completion."""
    blocks = message.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    reply: dict[str, Any] = {"role": "assistant", "content": text}
    calls = [{"id": b.get("id"), "type": "function",
              "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
             for b in blocks if b.get("type") == "tool_use"]
    if calls:
        reply["tool_calls"] = calls
    finish = _STOP_TO_OPENAI.get(str(message.get("stop_reason")), "stop")
    return {"id": str(message.get("id", "")), "object": "chat.completion", "created": 0,
            "model": message.get("model"), "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
            "usage": usage_to_openai(message.get("usage") or {})}


def completion_to_message(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion as an Anthropic Messages response (first choice)."""
    choice = (completion.get("choices") or [{}])[0]
    blocks = _openai_to_blocks(choice.get("message") or {})
    return {"id": f"msg_{completion.get('id', '')}", "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": _STOP_TO_ANTHROPIC.get(str(choice.get("finish_reason")), "end_turn"),
            "stop_sequence": None, "usage": usage_to_anthropic(completion.get("usage"))}


def error_to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-shaped error body in Anthropic's shape."""
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    kinds = {"insufficient_quota": "rate_limit_error", "upstream_error": "api_error"}
    kind = str(error.get("type") or "api_error")
    return {"type": "error", "error": {"type": kinds.get(kind, kind), "message": str(error.get("message", ""))}}


# -- streams ----------------------------------------------------------------------------------------------------
class AnthropicToChunks:
    """Anthropic stream events in, OpenAI chat completion chunks out (0..n per event)."""

    def __init__(self) -> None:
        self.base: dict[str, Any] = {"id": "", "object": "chat.completion.chunk", "created": 0, "model": ""}
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one parsed Anthropic event stands for."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.base.update(id=str(message.get("id", "")), model=message.get("model", ""))
            self.usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(int(event.get("index", 0)), len(self.tool_index))
                call = {"index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(int(event.get("index", 0)), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, _STOP_TO_OPENAI.get(str(reason), "stop"))]
        if kind == "message_stop":
            return [{**self.base, "choices": [], "usage": usage_to_openai(self.usage)}]
        if kind == "error":
            return [{"error": event.get("error") or {"message": "upstream stream error"}}]
        return []  # ping, content_block_stop


class ChunksToAnthropic:
    """OpenAI chat completion chunks in, Anthropic stream events out, as SSE bytes."""

    def __init__(self, model: str, message_id: str) -> None:
        self.model = model
        self.message_id = message_id
        self.started = False
        self.block: int = -1  # index of the open content block; -1: none
        self.block_kind = ""
        self.tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> Anthropic block index
        self.stop_reason = "end_turn"
        self.usage: dict[str, Any] | None = None
        self.finished = False

    @staticmethod
    def _event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {"id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                                   "content": [], "stop_reason": None, "stop_sequence": None,
                                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [self._event("message_start", {"message": message})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.block += 1
        self.block_kind = kind
        return [*out, self._event("content_block_start", {"index": self.block, "content_block": block})]

    def _close(self) -> list[bytes]:
        if self.block < 0 or not self.block_kind:
            return []
        self.block_kind = ""
        return [self._event("content_block_stop", {"index": self.block})]

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The events one OpenAI chunk stands for."""
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.block_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(self._event("content_block_delta",
                                       {"index": self.block, "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.stop_reason = _STOP_TO_ANTHROPIC.get(str(choice["finish_reason"]), "end_turn")
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self.tool_blocks:
            out += self._open("tool_use", {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                                           "input": {}})
            self.tool_blocks[index] = self.block
        if function.get("arguments"):
            out.append(self._event("content_block_delta", {"index": self.tool_blocks[index], "delta": {
                "type": "input_json_delta", "partial_json": function["arguments"]}}))
        return out

    def finish(self) -> list[bytes]:
        """The closing events: stop reason and usage, then message_stop."""
        if self.finished:
            return []
        self.finished = True
        out = [*self._start(), *self._close()]
        out.append(self._event("message_delta", {"delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                                                 "usage": usage_to_anthropic(self.usage)}))
        out.append(self._event("message_stop", {}))
        return out
