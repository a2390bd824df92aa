"""Two gateway processes sharing state: budgets and rate limits hold across them through Redis (started from
Debian's redis-server by the test) or through a shared PostgreSQL ledger, and a cached answer made by one is a
hit on the other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.route.gateway_servers import FakeUpstream, RedisServer, free_port, upstreams, wait_healthy
from tests.route.test_gateway import CHEAP, SHORT, expected_cost
from truecost.ledger import Ledger

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer()
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"redis-server could not be started in CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def two_gateways(config: dict[str, Any], folder: Path) -> Iterator[list[str]]:
    """`truecost gateway` twice, on two ports, with the same config; yields their base URLs."""
    processes, urls = [], []
    try:
        for i in range(2):
            port = free_port()
            path = folder / f"gateway-{i}.yaml"
            path.write_text(yaml.safe_dump({**config, "listen": {"port": port}, "name": f"gw-{i}"}), encoding="utf-8")
            processes.append(subprocess.Popen([sys.executable, "-m", "truecost", "gateway", "--config", str(path)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            urls.append(f"http://127.0.0.1:{port}")
        for process, url in zip(processes, urls, strict=True):
            wait_healthy(process, url)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=60)


async def _fire(urls: list[str], key: str, count: int, **create: Any) -> list[Any]:
    """`count` concurrent requests, alternating between the gateways."""
    clients = [openai.AsyncOpenAI(base_url=f"{u}/v1", api_key=key, max_retries=0, timeout=60) for u in urls]
    results = await asyncio.gather(*(clients[i % len(clients)].chat.completions.create(
        model="cheap", messages=[{"role": "user", "content": SHORT}], **create) for i in range(count)),
        return_exceptions=True)
    for oai in clients:
        await oai.close()
    return results


def _budget_config(upstream_url: str, budget: float, **extra: Any) -> dict[str, Any]:
    return {"upstreams": [{"name": "cheap", "base_url": f"{upstream_url}/v1", **CHEAP}],
            "keys": [{"name": "shared", "key": "sk-shared", "budget_usd": budget},
                     {"name": "limited", "key": "sk-limited", "rpm": 10}], **extra}


def test_redis_shares_budgets_rate_limits_and_the_cache_between_two_gateways(redis_url: str,
                                                                            tmp_path: Path) -> None:
    slow = FakeUpstream("cheap", delay_s=0.2)
    worst = expected_cost(CHEAP, len(SHORT.encode()) + 4, 16)
    ledger_url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with upstreams(slow) as servers:
        config = _budget_config(servers["cheap"].url, 5 * worst, redis_url=redis_url, ledger=ledger_url,
                                cache={"enabled": True, "shared_across_keys": False})
        with two_gateways(config, tmp_path) as urls:
            spent = asyncio.run(_fire(urls, "sk-shared", 40, max_tokens=16, extra_headers={"X-Truecost-Cache": "off"}))
            limited = asyncio.run(_fire(urls, "sk-limited", 30, extra_headers={"X-Truecost-Cache": "off"}))
            first = openai.OpenAI(base_url=f"{urls[0]}/v1", api_key="sk-shared", max_retries=0).chat.completions
            second = openai.OpenAI(base_url=f"{urls[1]}/v1", api_key="sk-shared", max_retries=0).chat.completions
            made = first.with_raw_response.create(model="cheap", messages=[{"role": "user", "content": "cache me"}],
                                                  max_tokens=1)
            reused = second.with_raw_response.create(model="cheap", messages=[{"role": "user", "content": "cache me"}],
                                                     max_tokens=1)
    rows = Ledger(ledger_url).list_requests()
    shared = [r for r in rows if r.api_key == "shared" and not r.cache_hit and r.route == "cheap"]
    assert sum(r.cost_usd for r in shared) <= 5 * worst + 1e-12  # 0% overspend across the two processes
    assert sum(not isinstance(r, BaseException) for r in spent) >= 5
    admitted = sum(not isinstance(r, BaseException) for r in limited)
    assert 9 <= admitted <= 11  # rpm 10 held within +-1 request across both gateways
    assert all(isinstance(r, openai.RateLimitError) for r in limited if isinstance(r, BaseException))
    assert "x-truecost-cache" not in made.headers and reused.headers["x-truecost-cache"] == "hit"
    hit = [r for r in rows if r.cache_hit]
    assert len(hit) == 1 and hit[0].saved_usd > 0 and hit[0].cost_usd == 0


@pytest.mark.postgres
def test_a_postgresql_ledger_shares_budgets_between_two_gateways(postgres_url: str, tmp_path: Path) -> None:
    import uuid

    slow = FakeUpstream("cheap", delay_s=0.2)
    worst = expected_cost(CHEAP, len(SHORT.encode()) + 4, 16)
    key = f"sk-{uuid.uuid4().hex[:8]}"  # the server may hold earlier runs' counters
    with upstreams(slow) as servers:
        config = _budget_config(servers["cheap"].url, 5 * worst, ledger=postgres_url)
        config["keys"][0].update(name=key, key=key)
        with two_gateways(config, tmp_path) as urls:
            results = asyncio.run(_fire(urls, key, 40, max_tokens=16))
    rows = [r for r in Ledger(postgres_url).list_requests() if r.api_key == key]
    served = sum(not isinstance(r, BaseException) for r in results)
    assert 5 <= served < 40 and len([r for r in rows if r.status == "ok"]) == served
    assert sum(r.cost_usd for r in rows) <= 5 * worst + 1e-12  # 0% overspend across the two processes
