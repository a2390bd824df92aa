"""The SSE relay on its own: events split anywhere by the network come out whole, tallied, in order."""

from __future__ import annotations

import json
import random

import pytest

from truecost.route.gateway.sse import SSERelay

WORDS = ["Ein", " Würfel", " hat", " sechs", " Seiten", "."]


def stream_bytes(*, usage: bool, newline: str = "\n") -> bytes:
    events = [": keep-alive comment"]
    for word in WORDS:
        events.append("data: " + json.dumps({"object": "chat.completion.chunk",
                                             "choices": [{"index": 0, "delta": {"content": word}}]}))
    events.append("data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if usage:
        events.append("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 6}}))
    events.append("data: [DONE]")
    return "".join(e + newline + newline for e in events).encode()


def relay_in_pieces(data: bytes, relay: SSERelay, seed: int) -> list[bytes]:
    """Feed `data` cut at random byte offsets (also inside multi-byte characters)."""
    rng = random.Random(seed)
    out: list[bytes] = []
    position = 0
    while position < len(data):
        step = rng.randint(1, 40)
        out += relay.feed(data[position:position + step])
        position += step
    return out + relay.flush()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_events_come_out_whole_and_in_order_however_the_bytes_arrive(seed: int, newline: str) -> None:
    data = stream_bytes(usage=True, newline=newline)
    relay = SSERelay(drop_usage_only=False, keep_text=True)
    out = relay_in_pieces(data, relay, seed)
    assert b"".join(out) == data.replace(b"\r\n", b"\n")
    assert all(event.endswith(b"\n\n") and event.count(b"\n\n") == 1 for event in out)
    tally = relay.tally
    assert tally.text == "".join(WORDS) and tally.output_chars == len("".join(WORDS))
    assert (tally.prompt_tokens, tally.completion_tokens, tally.done) == (9, 6, True)


def test_the_usage_chunk_the_gateway_asked_for_is_dropped_unless_the_client_asked() -> None:
    data = stream_bytes(usage=True)
    dropped = relay_in_pieces(data, SSERelay(drop_usage_only=True, keep_text=False), seed=1)
    kept = relay_in_pieces(data, SSERelay(drop_usage_only=False, keep_text=False), seed=1)
    assert len(kept) == len(dropped) + 1
    assert not any(b'"usage"' in event for event in dropped)
    assert b"".join(dropped) == stream_bytes(usage=False)


def test_an_error_event_and_a_stream_without_trailing_blank_line_are_handled() -> None:
    relay = SSERelay(drop_usage_only=True, keep_text=False)
    out = relay.feed(b'data: {"error": {"message": "overloaded"}}\n\ndata: [DONE]')
    out += relay.flush()
    assert out == [b'data: {"error": {"message": "overloaded"}}\n\n', b"data: [DONE]\n\n"]
    assert relay.tally.error == "overloaded" and relay.tally.done and relay.tally.prompt_tokens is None
