"""Streams on their own: httpx-sse splits events wherever the network cuts the bytes; chunks are tallied."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from truecost.route.gateway.settings import UpstreamSettings
from truecost.route.gateway.sse import MalformedEvent, StreamTally, completion_chunks, is_usage_only, parse_event
from truecost.route.gateway.upstream import Adapter, _events

WORDS = ["Ein", " Würfel", " hat", " sechs", " Seiten", "."]


def stream_bytes(*, newline: str = "\n", malformed: bool = False) -> bytes:
    events = [": keep-alive comment"]
    for word in WORDS:
        events.append("data: " + json.dumps({"object": "chat.completion.chunk",
                                             "choices": [{"index": 0, "delta": {"content": word}}]}))
        if malformed and word == " hat":
            events.append("data: {not json")
    events.append("data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 6}}))
    events.append("data: [DONE]")
    return "".join(e + newline + newline for e in events).encode()


class Pieces(httpx.AsyncByteStream):
    """The bytes cut at random offsets (also inside multi-byte characters), as a network might deliver them."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data, self.rng = data, random.Random(seed)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        position = 0
        while position < len(self.data):
            step = self.rng.randint(1, 40)
            yield self.data[position:position + step]
            position += step


def relay(data: bytes, seed: int) -> tuple[list[dict], list[MalformedEvent]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Pieces(data, seed))
    adapter = Adapter(UpstreamSettings(name="x", base_url="http://127.0.0.1:1"))

    async def collect() -> tuple[list[dict], list[MalformedEvent]]:
        from httpx_sse import EventSource

        chunks, bad = [], []
        async for item in _events(EventSource(response), adapter):
            (bad if isinstance(item, MalformedEvent) else chunks).append(item if isinstance(item, MalformedEvent)
                                                                         else item.chunk)
        return chunks, bad

    return asyncio.run(collect())


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_events_come_out_whole_and_in_order_however_the_bytes_arrive(seed: int, newline: str) -> None:
    chunks, bad = relay(stream_bytes(newline=newline), seed)
    assert bad == [] and len(chunks) == len(WORDS) + 2  # words, finish, usage; [DONE] ends the iteration
    tally = StreamTally(keep_text=True)
    for chunk in chunks:
        tally.add(chunk)
    assert tally.text == "".join(WORDS) and tally.output_chars == len("".join(WORDS))
    assert tally.usage == {"prompt_tokens": 9, "completion_tokens": 6} and tally.finish_reason == "stop"
    assert is_usage_only(chunks[-1]) and not is_usage_only(chunks[0])


def test_a_malformed_event_is_reported_not_passed_on() -> None:
    chunks, bad = relay(stream_bytes(malformed=True), seed=1)
    assert len(bad) == 1 and "not JSON" in str(bad[0])
    assert len(chunks) == len(WORDS) + 2


def test_parse_event_and_replaying_a_completion_as_chunks() -> None:
    assert parse_event("[DONE]") is None
    with pytest.raises(MalformedEvent):
        parse_event("[1, 2]")
    completion = {"id": "c1", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
                                                                                 "content": "hi there"},
                                                         "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    tally = StreamTally(keep_text=True)
    for chunk in completion_chunks(completion):
        tally.add(chunk)
    assert tally.text == "hi there" and tally.usage == completion["usage"] and tally.finish_reason == "stop"
    rebuilt = tally.completion("m", "c1")
    assert rebuilt["choices"][0]["message"]["content"] == "hi there"
