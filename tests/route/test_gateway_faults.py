"""Hostile input and flaky upstreams (issue: faults): nothing lost, nothing overspent, nothing leaked.

Each test reproduces a fault found against the earlier gateway with real servers on loopback and the official
openai client: an open /metrics, unbounded bodies, budgets checked before and charged after, and streams that
committed their headers before the upstream had said anything.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import openai
import pytest

from tests.route.gateway_servers import FakeUpstream, upstreams, words
from tests.route.test_gateway import ADMIN, CHEAP, SHORT, client, expected_cost, gateway


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_metrics_and_spend_need_the_admin_key_and_health_stays_open() -> None:
    with upstreams(FakeUpstream("cheap")) as servers:
        config = {"upstreams": [{"name": "cheap", "base_url": f"{servers['cheap'].url}/v1", **CHEAP}],
                  "keys": [{"name": "team-a", "key": "sk-team-a", "budget_usd": 1.0}]}
        with gateway(config) as (server, _):
            client(server, "sk-team-a").chat.completions.create(model="cheap",
                                                                messages=[{"role": "user", "content": SHORT}])
            anonymous = httpx.get(f"{server.url}/metrics")
            as_client = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer sk-team-a"})
            spend_anonymous = httpx.get(f"{server.url}/v1/spend")
            admin = httpx.get(f"{server.url}/metrics", headers=ADMIN)
            spend = httpx.get(f"{server.url}/v1/spend", params={"group_by": "key"}, headers=ADMIN)
            health = httpx.get(f"{server.url}/healthz")
    for refused in (anonymous, as_client, spend_anonymous):
        assert refused.status_code == 401 and "team-a" not in refused.text
        assert refused.json()["error"]["code"] == "invalid_api_key"
    assert admin.status_code == 200 and 'truecost_gateway_key_spent_usd{key="team-a"}' in admin.text
    assert spend.status_code == 200 and spend.json()["data"][0]["group"] == "team-a"
    assert health.status_code == 200 and health.json()["status"] == "ok"


def _post_huge(url: str, size: int, *, chunked: bool) -> tuple[bytes, float]:
    """Start sending a `size`-byte body, stop as soon as the server answers; (status line, seconds to answer)."""
    host, port = url.removeprefix("http://").split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n").encode()
    piece = b'{"model": "cheap", "messages": [{"role": "user", "content": "' + b"a" * (1 << 20)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setblocking(True)
        started = time.perf_counter()
        sock.sendall(head)
        sent = 0
        sock.settimeout(0.001)
        while sent < size:
            block = piece[: min(len(piece), size - sent)]
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            except (BrokenPipeError, ConnectionResetError, TimeoutError, BlockingIOError):
                break
            sent += len(block)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except (TimeoutError, BlockingIOError):
                continue
        sock.settimeout(10)
        answer = sock.recv(200)
        return answer.split(b"\r\n", 1)[0], time.perf_counter() - started


def test_a_50_mb_body_is_refused_at_once_and_memory_stays_flat() -> None:
    cheap = FakeUpstream("cheap")
    with upstreams(cheap) as servers:
        config = {"upstreams": [{"name": "cheap", "base_url": f"{servers['cheap'].url}/v1", **CHEAP}],
                  "max_body_bytes": 1 << 20}
        with gateway(config) as (server, ledger):
            before = _rss_bytes()
            timings = []
            for i in range(10):
                status, seconds = _post_huge(server.url, 50 << 20, chunked=i % 2 == 1)
                assert status.startswith(b"HTTP/1.1 413"), status
                timings.append(seconds)
            grown = _rss_bytes() - before
            # The gateway still serves others normally.
            reply = client(server).chat.completions.create(model="cheap", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content.startswith("cheap answers")
    declared = sorted(timings[0::2])
    assert declared[len(declared) // 2] < 0.1  # a declared 50 MB is refused before its body is read
    assert max(timings) < 5  # a chunked one as soon as it passes 1 MB
    assert grown < 40 << 20  # ten 50 MB bodies: not one of them held in memory
    assert cheap.received == [dict(model="cheap", messages=[{"role": "user", "content": "hi"}])]
    assert len(ledger.list_requests()) == 1


def test_concurrent_requests_never_spend_past_the_budget() -> None:
    answer = "cheap answers a 21 character prompt"
    worst = expected_cost(CHEAP, len(SHORT.encode()) + 4, 16)
    budget = 5 * worst  # about five requests
    cheap = FakeUpstream("cheap", delay_s=0.2)  # slow enough that all 50 are in flight together
    with upstreams(cheap) as servers:
        config = {"upstreams": [{"name": "cheap", "base_url": f"{servers['cheap'].url}/v1", **CHEAP}],
                  "keys": [{"name": "team-a", "key": "sk-a", "budget_usd": budget}]}

        async def fire(url: str) -> list[Any]:
            oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-a", max_retries=0, timeout=60)
            results = await asyncio.gather(*(oai.chat.completions.create(
                model="cheap", max_tokens=16, messages=[{"role": "user", "content": SHORT}]) for _ in range(50)),
                return_exceptions=True)
            await oai.close()
            return results

        with gateway(config) as (server, ledger):
            results = asyncio.run(fire(server.url))
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(served) + len(refused) == 50 and len(served) >= 5
    rows = ledger.list_requests()
    spent = sum(r.cost_usd for r in rows)
    assert spent <= budget + 1e-12  # 0% overspend
    assert spent == pytest.approx(len(served) * expected_cost(CHEAP, words(SHORT), words(answer)))
    assert len(cheap.received) == len(served)


@pytest.mark.slow
def test_streams_fall_back_from_upstreams_that_stall_or_break_before_the_first_event() -> None:
    flaky, good = FakeUpstream("flaky", first_event_faults=True, stall_s=5.0), FakeUpstream("good")
    with upstreams(flaky, good) as servers:
        config = {"upstreams": [{"name": "flaky", "base_url": f"{servers['flaky'].url}/v1",
                                 "first_event_timeout_s": 1.5, **CHEAP},  # at 0.3 s, loaded CPUs timed out healthy ones
                                {"name": "good", "base_url": f"{servers['good'].url}/v1", **CHEAP}],
                  "routes": {"auto": {"models": ["flaky", "good"]}}}

        async def one(oai: openai.AsyncOpenAI, limit: asyncio.Semaphore) -> str:
            async with limit:
                stream = await oai.chat.completions.create(model="auto", stream=True,
                                                           messages=[{"role": "user", "content": SHORT}])
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        async def fire(url: str) -> list[Any]:
            oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
            limit = asyncio.Semaphore(24)
            results = await asyncio.gather(*(one(oai, limit) for _ in range(600)), return_exceptions=True)
            await oai.close()
            return results

        with gateway(config) as (server, ledger):
            results = asyncio.run(fire(server.url))
    lost = [r for r in results if isinstance(r, BaseException) or not r.endswith("character prompt")]
    assert lost == []  # 0 of 600 lost
    rows = ledger.list_requests()
    assert len(rows) == 600 and all(r.status == "ok" for r in rows)
    fell_back = [r for r in rows if r.extra.get("fallback_from") == "flaky"]
    assert len(fell_back) == 600 * 4 // 25  # 16% of the flaky upstream's streams
    reasons = {a["reason"] for r in fell_back for a in r.extra["attempts"]}
    assert {"timeout", "stream"} <= reasons <= {"timeout", "stream", "connect"}  # stalled, malformed, dropped


def test_malformed_events_are_dropped_and_logged_as_errors() -> None:
    odd = FakeUpstream("odd", malformed_middle=True)
    with upstreams(odd) as servers:
        config = {"upstreams": [{"name": "odd", "base_url": f"{servers['odd'].url}/v1", **CHEAP}]}
        with gateway(config) as (server, ledger):
            chunks = list(client(server).chat.completions.create(
                model="odd", stream=True, messages=[{"role": "user", "content": SHORT}]))
            metrics = httpx.get(f"{server.url}/metrics", headers=ADMIN).text
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "odd answers a 21 character prompt"
    (row,) = ledger.list_requests()
    assert row.status == "error" and row.extra["malformed_events"] == 1
    assert "<not json>" in row.extra["malformed_example"]
    assert 'reason="malformed_event"' in metrics
