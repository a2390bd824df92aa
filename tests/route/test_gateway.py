"""The gateway over real loopback HTTP: the official openai client in front, scripted upstream servers behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.route.gateway_servers import FakeUpstream, ThreadServer, serving, upstreams, words
from truecost.ledger import Ledger
from truecost.route.gateway import LengthRouter, parse_gateway_settings
from truecost.route.gateway.app import create_app

# Per-1M-token prices set in the gateway config, so expected costs can be computed by hand below.
CHEAP = {"input_usd_per_1m": 1.0, "output_usd_per_1m": 2.0}
STRONG = {"input_usd_per_1m": 10.0, "output_usd_per_1m": 30.0}
THRESHOLD_CHARS = 50
ADMIN_KEY = "sk-admin-test"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SHORT = "What is two plus two?"
LONG = "Explain, step by step and with a worked example, how a B-tree keeps itself balanced on insert."


def expected_cost(prices: dict[str, float], prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * prices["input_usd_per_1m"] + completion_tokens * prices["output_usd_per_1m"]) / 1e6


@contextmanager
def gateway(config: dict[str, Any], *, routers: dict[str, Any] | None = None,
            ledger: Ledger | None = None) -> Iterator[tuple[ThreadServer, Ledger]]:
    """A gateway for `config` on a free loopback port, logging to a fresh SQLite ledger in the test's cwd."""
    ledger = ledger or Ledger("sqlite:///gateway-ledger.db")
    app = create_app(parse_gateway_settings({"admin_key": ADMIN_KEY, **config}), routers=routers, ledger=ledger,
                     run_id="test-run")
    with serving(app) as server:
        server.gateway = app.state.gateway  # type: ignore[attr-defined]
        yield server, ledger
    # The server has stopped: its lifespan drained the ledger queue.


def client(server: ThreadServer, key: str = "none", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=20, **kwargs)


def two_tier(cheap: ThreadServer, strong: ThreadServer, **extra: Any) -> dict[str, Any]:
    return {"upstreams": [{"name": "cheap", "base_url": f"{cheap.url}/v1", **CHEAP},
                          {"name": "strong", "base_url": f"{strong.url}/v1", "model": "big-model", **STRONG}],
            **extra}


@pytest.fixture()
def cheap_strong() -> Iterator[tuple[dict[str, ThreadServer], FakeUpstream, FakeUpstream]]:
    cheap, strong = FakeUpstream("cheap"), FakeUpstream("strong")
    with upstreams(cheap, strong) as servers:
        yield servers, cheap, strong


class _WarmingRouter(LengthRouter):
    """A router that counts its warm-ups (a fitted router loads its embedding model there)."""

    def __init__(self, models: list[str]) -> None:
        super().__init__(models, threshold_chars=THRESHOLD_CHARS)
        self.warm_ups = 0

    def warm_up(self) -> _WarmingRouter:
        self.warm_ups += 1
        return self


def test_a_router_is_warmed_up_while_the_gateway_starts(cheap_strong: Any) -> None:
    """`Router.warm_up` runs at startup, so the first request does not pay for loading the embedding model."""
    servers, _, _ = cheap_strong
    router = _WarmingRouter(["cheap", "strong"])
    with gateway(two_tier(servers["cheap"], servers["strong"]), routers={"auto": router}):
        assert router.warm_ups == 1


def test_routes_by_prompt_and_knob_and_logs_each_request(cheap_strong: Any) -> None:
    servers, cheap, strong = cheap_strong
    router = LengthRouter(["cheap", "strong"], threshold_chars=THRESHOLD_CHARS)
    config = two_tier(servers["cheap"], servers["strong"], routes={"auto": {"models": ["cheap", "strong"]}})
    with gateway(config, routers={"auto": router}) as (server, ledger):
        oai = client(server)
        short = oai.chat.completions.with_raw_response.create(model="auto",
                                                              messages=[{"role": "user", "content": SHORT}])
        long = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": LONG}])
        # The knob header overrides the config: 0 sends even a short prompt to the strong model, 0.99 none.
        forced_strong = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": SHORT}],
                                                    extra_headers={"X-Truecost-Knob": "0"})
        forced_cheap = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": LONG}],
                                                   extra_headers={"X-Truecost-Knob": "0.99"})
        direct = oai.chat.completions.create(model="strong", messages=[{"role": "user", "content": SHORT}])
    assert short.headers["x-truecost-model"] == "cheap"
    assert short.parse().choices[0].message.content == f"cheap answers a {len(SHORT)} character prompt"
    assert long.choices[0].message.content.startswith("strong answers")
    assert forced_strong.choices[0].message.content.startswith("strong answers")
    assert forced_cheap.choices[0].message.content.startswith("cheap answers")
    assert direct.choices[0].message.content.startswith("strong answers")
    # The upstream receives its own model id, not the route name.
    assert {b["model"] for b in strong.received} == {"big-model"}
    assert {b["model"] for b in cheap.received} == {"cheap"}

    rows = ledger.list_requests()
    assert [r.model for r in rows] == ["cheap", "strong", "strong", "cheap", "strong"]
    assert [r.route for r in rows] == ["auto", "auto", "auto", "auto", "strong"]
    assert all(r.status == "ok" and r.run_id == "test-run" for r in rows)
    for row, prompt in zip(rows[:4], [SHORT, LONG, SHORT, LONG], strict=True):
        assert row.router_score == pytest.approx(len(prompt) / (len(prompt) + THRESHOLD_CHARS))
    assert rows[4].router_score is None
    first = rows[0]
    answer = f"cheap answers a {len(SHORT)} character prompt"
    assert (first.prompt_tokens, first.completion_tokens) == (words(SHORT), words(answer))
    assert first.cost_usd == pytest.approx(expected_cost(CHEAP, words(SHORT), words(answer)))
    assert rows[1].cost_usd == pytest.approx(expected_cost(STRONG, rows[1].prompt_tokens, rows[1].completion_tokens))
    assert first.extra["price_source"] == "config"
    assert first.latency_ms > 0 and first.prompt is None and first.output is None  # text logging is off


def test_streaming_passes_chunks_through_and_logs_usage(cheap_strong: Any) -> None:
    servers, cheap, _ = cheap_strong
    config = two_tier(servers["cheap"], servers["strong"], log_text=True,
                      routes={"auto": {"length_router": {"threshold_chars": THRESHOLD_CHARS},
                                       "models": ["cheap", "strong"]}})
    with gateway(config) as (server, ledger):
        oai = client(server)
        chunks = list(oai.chat.completions.create(model="auto", stream=True,
                                                  messages=[{"role": "user", "content": SHORT}]))
        with_usage = list(oai.chat.completions.create(model="auto", stream=True,
                                                      stream_options={"include_usage": True},
                                                      messages=[{"role": "user", "content": LONG}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    answer = f"cheap answers a {len(SHORT)} character prompt"
    assert text == answer
    # One chunk per word plus the finish chunk, as the upstream sent them; the usage chunk the gateway asked for
    # on its own behalf is not shown to a client that did not ask for it.
    assert len(chunks) == len(answer.split(" ")) + 1
    assert all(c.choices for c in chunks)
    assert cheap.received[0]["stream_options"] == {"include_usage": True}
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    rows = ledger.list_requests()
    assert [r.model for r in rows] == ["cheap", "strong"]
    assert rows[0].status == "ok" and rows[0].extra["stream"] is True
    assert (rows[0].prompt_tokens, rows[0].completion_tokens) == (words(SHORT), words(answer))
    assert rows[0].cost_usd == pytest.approx(expected_cost(CHEAP, words(SHORT), words(answer)))
    assert rows[0].prompt == SHORT and rows[0].output == answer  # log_text on
    assert rows[1].completion_tokens == with_usage[-1].usage.completion_tokens


def test_failing_upstream_falls_back_to_the_next_model_and_says_so() -> None:
    broken, good = FakeUpstream("broken", fail_status=503), FakeUpstream("good")
    with upstreams(broken, good) as servers:
        config = {"upstreams": [{"name": n, "base_url": f"{s.url}/v1", **CHEAP} for n, s in servers.items()],
                  "routes": {"auto": {"models": ["broken", "good"]}}}
        with gateway(config) as (server, ledger):
            oai = client(server)
            reply = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": SHORT}])
            streamed = list(oai.chat.completions.create(model="auto", stream=True,
                                                        messages=[{"role": "user", "content": SHORT}]))
            metrics = httpx.get(f"{server.url}/metrics", headers=ADMIN).text
    assert reply.choices[0].message.content.startswith("good answers")
    assert "".join(c.choices[0].delta.content or "" for c in streamed).startswith("good answers")
    assert len(broken.received) == 2 and len(good.received) == 2
    rows = ledger.list_requests()
    assert [(r.model, r.status) for r in rows] == [("good", "ok"), ("good", "ok")]
    for row in rows:
        assert row.extra["fallback_from"] == "broken"
        assert row.extra["attempts"] == [{"model": "broken", "reason": "status", "error": "HTTP 503"}]
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    errors = {s.labels["model"]: s.value for s in families["truecost_gateway_upstream_errors"].samples
              if s.name.endswith("_total")}
    assert errors == {"broken": 2.0}


def test_an_answer_that_is_not_a_completion_counts_as_a_failure() -> None:
    garbled, good = FakeUpstream("garbled", garbage=True), FakeUpstream("good")
    with upstreams(garbled, good) as servers:
        config = {"upstreams": [{"name": n, "base_url": f"{s.url}/v1"} for n, s in servers.items()],
                  "routes": {"auto": {"models": ["garbled", "good"]}}}
        with gateway(config) as (server, ledger):
            reply = client(server).chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.APIStatusError) as caught:
                client(server).chat.completions.create(model="garbled", messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content.startswith("good answers")
    assert caught.value.status_code == 502 and "not JSON" in caught.value.message
    rows = ledger.list_requests()
    assert [(r.model, r.status) for r in rows] == [("good", "ok"), ("garbled", "error")]
    assert rows[0].extra["attempts"][0]["reason"] == "protocol"


def test_timeout_falls_back_and_all_timeouts_give_504() -> None:
    slow, good = FakeUpstream("slow", delay_s=1.5), FakeUpstream("good")
    with upstreams(slow, good) as servers:
        config = {"upstreams": [{"name": "slow", "base_url": f"{servers['slow'].url}/v1", "timeout_s": 0.3},
                                {"name": "good", "base_url": f"{servers['good'].url}/v1"}],
                  "routes": {"auto": {"models": ["slow", "good"]}}}
        with gateway(config) as (server, ledger):
            oai = client(server)
            reply = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": SHORT}])
            with pytest.raises(openai.InternalServerError) as caught:
                oai.chat.completions.create(model="slow", messages=[{"role": "user", "content": SHORT}])
    assert reply.choices[0].message.content.startswith("good answers")
    assert caught.value.status_code == 504
    assert "no answer within 0.3 s" in caught.value.message
    rows = ledger.list_requests()
    assert [(r.model, r.status) for r in rows] == [("good", "ok"), ("slow", "error")]
    assert rows[0].extra["attempts"][0]["reason"] == "timeout"
    assert rows[0].latency_ms >= 300
    assert rows[1].cost_usd == 0 and rows[1].completion_tokens == 0
    # No catalogue price for these made-up models and none in the config: priced at 0 and marked so.
    assert rows[0].extra["price_source"] == "unknown"


def test_upstream_refusing_the_request_is_passed_on_without_fallback() -> None:
    picky, good = FakeUpstream("picky", fail_status=400), FakeUpstream("good")
    with upstreams(picky, good) as servers:
        config = {"upstreams": [{"name": n, "base_url": f"{s.url}/v1"} for n, s in servers.items()],
                  "routes": {"auto": {"models": ["picky", "good"]}}}
        with gateway(config) as (server, ledger), pytest.raises(openai.BadRequestError) as caught:
            client(server).chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert "picky is failing on purpose" in caught.value.message
    assert good.received == []
    assert [(r.model, r.status) for r in ledger.list_requests()] == [("picky", "error")]


def test_broken_stream_ends_with_an_error_event_and_is_logged() -> None:
    flaky = FakeUpstream("flaky", break_stream_after=2)
    with upstreams(flaky) as servers:
        config = {"upstreams": [{"name": "flaky", "base_url": f"{servers['flaky'].url}/v1"}]}
        with gateway(config) as (server, ledger), pytest.raises(openai.APIError) as caught:
            list(client(server).chat.completions.create(model="flaky", stream=True,
                                                        messages=[{"role": "user", "content": SHORT}]))
    assert "broke off the stream" in caught.value.message
    rows = ledger.list_requests()
    assert [(r.model, r.status) for r in rows] == [("flaky", "error")]
    assert "stream_error" in rows[0].extra


def test_budget_reserves_the_worst_case_runs_out_with_a_429_and_survives_a_restart(cheap_strong: Any) -> None:
    servers, cheap, _ = cheap_strong
    answer = f"cheap answers a {len(SHORT)} character prompt"
    actual = expected_cost(STRONG, words(SHORT), words(answer))
    # Without a tokenizer the prompt is reserved at its UTF-8 bytes plus 4 template tokens (an upper bound for
    # byte-level BPE), and the completion at max_tokens.
    worst = expected_cost(STRONG, len(SHORT.encode()) + 4, 20)
    budget = 2 * actual + worst - 1e-9  # room for two requests' real cost, not for a third's worst case
    config = two_tier(servers["cheap"], servers["strong"],
                      keys=[{"name": "team-a", "key": "sk-team-a", "budget_usd": budget},
                            {"name": "team-b", "key": "sk-team-b"}])
    config["upstreams"][0].update(STRONG)
    messages = [{"role": "user", "content": SHORT}]
    with gateway(config) as (server, ledger):
        team_a = client(server, "sk-team-a")
        team_a.chat.completions.create(model="cheap", messages=messages, max_tokens=20)
        team_a.chat.completions.create(model="cheap", messages=messages, max_tokens=20)
        with pytest.raises(openai.RateLimitError) as caught:
            team_a.chat.completions.create(model="cheap", messages=messages, max_tokens=20)
        client(server, "sk-team-b").chat.completions.create(model="cheap", messages=messages)  # no budget
        with pytest.raises(openai.AuthenticationError):
            client(server, "sk-wrong").chat.completions.create(model="cheap", messages=messages)
    assert caught.value.code == "budget_exceeded" and "team-a" in caught.value.message
    assert f"{worst:.6f}" in caught.value.message
    assert len(cheap.received) == 3
    rows = ledger.list_requests()
    assert [(r.api_key, r.status) for r in rows] == [("team-a", "ok"), ("team-a", "ok"), ("team-a", "rejected"),
                                                     ("team-b", "ok")]
    assert rows[0].extra["reserved_usd"] == pytest.approx(worst) and rows[0].cost_usd == pytest.approx(actual)
    assert rows[2].cost_usd == 0 and rows[2].extra["reason"] == "budget"
    assert all("sk-" not in (r.api_key or "") for r in rows)  # the secret itself is never stored
    # A restarted gateway reads the spend back from the ledger: the key stays over budget.
    with gateway(config, ledger=ledger) as (server, _), pytest.raises(openai.RateLimitError):
        client(server, "sk-team-a").chat.completions.create(model="cheap", messages=messages, max_tokens=20)
    assert len(cheap.received) == 3


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"model": "auto"}', 400, "messages"),
    (b'{"model": "auto", "messages": []}', 400, "messages"),
    (b'{"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages.0.role"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "model"),
    (b'{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}', 404, "gpt-9"),
])
def test_malformed_requests_get_a_clear_4xx_and_nothing_is_logged(cheap_strong: Any, body: bytes, status: int,
                                                                  needle: str) -> None:
    servers, cheap, strong = cheap_strong
    with gateway(two_tier(servers["cheap"], servers["strong"])) as (server, ledger):
        response = httpx.post(f"{server.url}/v1/chat/completions", content=body,
                              headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"
    assert ledger.list_requests() == [] and cheap.received == [] and strong.received == []


def test_bad_knob_header_and_unknown_paths_answer_in_openai_shape(cheap_strong: Any) -> None:
    servers, _, _ = cheap_strong
    with gateway(two_tier(servers["cheap"], servers["strong"])) as (server, ledger):
        with pytest.raises(openai.BadRequestError) as caught:
            client(server).chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                                   extra_headers={"X-Truecost-Knob": "lots"})
        missing = httpx.get(f"{server.url}/v1/nothing-here")
    assert "X-Truecost-Knob" in caught.value.message
    assert missing.status_code == 404 and "error" in missing.json()
    assert ledger.list_requests() == []


def test_models_health_and_metrics(cheap_strong: Any) -> None:
    servers, _, _ = cheap_strong
    config = two_tier(servers["cheap"], servers["strong"], routes={"auto": {"models": ["cheap", "strong"]}})
    with gateway(config) as (server, _):
        oai = client(server)
        listed = [m.id for m in oai.models.list()]
        for content in (SHORT, LONG, SHORT):
            oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": content}])
        health = httpx.get(f"{server.url}/healthz").json()
        metrics = httpx.get(f"{server.url}/metrics", headers=ADMIN)
    assert listed == ["auto", "cheap", "strong"]
    assert health["status"] == "ok" and health["requests"] == 3
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    served = [s for s in families["truecost_gateway_requests"].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in served] == [({"route": "auto", "model": "cheap", "status": "ok"}, 3.0)]
    cost = sum(s.value for s in families["truecost_gateway_cost_usd"].samples if s.name.endswith("_total"))
    assert cost > 0
    count = [s.value for s in families["truecost_gateway_request_seconds"].samples if s.name.endswith("_count")]
    assert count == [3.0]


def test_a_fitted_router_from_truecost_route_serves_auto(cheap_strong: Any, tmp_path: Path) -> None:
    """The router contract end to end: fit a real truecost.route router, save it, name its folder in the config."""
    route = pytest.importorskip("truecost.route")
    try:
        from truecost.route.outcomes import OutcomeDataset  # noqa: F401
    except ImportError:
        pytest.skip("truecost.route has no outcome dataset yet")
    servers, _, _ = cheap_strong
    router = _fit_small_router(route, tmp_path / "router")
    if router is None:
        pytest.skip("truecost.route cannot fit a router from this test's data yet")
    folder = str(tmp_path / "router")
    config = two_tier(servers["cheap"], servers["strong"], routes={
        "auto": {"router": folder, "knob": 0.0},
        # A share of strong-model calls instead of a knob: the router calibrates it on its training prompts.
        "all-strong": {"router": folder, "strong_share": 1.0},
        "none-strong": {"router": folder, "strong_share": 0.0}})
    with gateway(config) as (server, ledger):
        oai = client(server)
        reply = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": LONG}])
        shares = {name: [oai.chat.completions.create(model=name, messages=[{"role": "user", "content": p}])
                         .choices[0].message.content.split()[0] for p in (SHORT, LONG)]
                  for name in ("all-strong", "none-strong")}
    loaded = route.load_router(tmp_path / "router")
    expected = loaded.route(LONG, 0.0)
    assert reply.choices[0].message.content.startswith(f"{expected.model} answers")
    row = ledger.list_requests()[0]
    assert row.model == expected.model and row.router_score == pytest.approx(expected.score)
    assert shares == {"all-strong": ["strong", "strong"], "none-strong": ["cheap", "cheap"]}


def _fit_small_router(route: Any, out: Path) -> Any:
    """Fit the simplest learned router on made-up outcomes where long prompts need the strong model."""
    import json

    lines = []
    for i in range(40):
        long = i % 2 == 1
        prompt = (LONG if long else SHORT) + f" (variant {i})"
        lines.append({"id": str(i), "prompt": prompt,
                      "outcomes": {"cheap": {"quality": 0.2 if long else 0.9, "cost": 0.001},
                                   "strong": {"quality": 0.95, "cost": 0.01}}})
    data = out.parent / "outcomes.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    try:
        dataset = route.read_outcomes(data)
        router = route.router_class("knn")(embedder="tfidf")
        router.fit(dataset)
        router.save(out)
    except Exception:  # noqa: BLE001 - the route part is still landing; its own tests cover fitting
        return None
    return router


def test_recorder_writes_in_batches_and_a_bad_row_costs_only_itself(capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from truecost.ledger import RequestRecord
    from truecost.route.gateway.recorder import LedgerRecorder

    ledger = Ledger("sqlite:///recorder.db")
    recorder = LedgerRecorder(ledger, retries=1, linger_s=0.01)
    for i in range(250):
        # Row 100 carries something JSON cannot store: its batch fails, then goes in row by row.
        extra = {"bad": object()} if i == 100 else {}
        recorder.submit(RequestRecord(timestamp=datetime.now(UTC), model=f"m{i}", route="auto", extra=extra))
    recorder.close()
    rows = ledger.list_requests()
    assert len(rows) == 249 and recorder.written == 249 and recorder.failed == 1
    assert sorted(int(r.model[1:]) for r in rows) == [i for i in range(250) if i != 100]
    assert "could not write a request" in capsys.readouterr().err


def test_concurrent_requests_are_all_answered_and_logged_once(cheap_strong: Any) -> None:
    import asyncio

    servers, cheap, strong = cheap_strong
    config = two_tier(servers["cheap"], servers["strong"],
                      routes={"auto": {"length_router": {"threshold_chars": THRESHOLD_CHARS},
                                       "models": ["cheap", "strong"]}})
    prompts = [SHORT if i % 3 else LONG for i in range(60)]

    async def fire(url: str) -> list[str]:
        oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
        replies = await asyncio.gather(*(oai.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": p}]) for p in prompts))
        await oai.close()
        return [r.choices[0].message.content or "" for r in replies]

    with gateway(config) as (server, ledger):
        answers = asyncio.run(fire(server.url))
    assert [a.split()[0] for a in answers] == ["cheap" if p == SHORT else "strong" for p in prompts]
    rows = ledger.list_requests()
    assert len(rows) == len(prompts) == len(cheap.received) + len(strong.received)
    assert len({r.extra["request_id"] for r in rows}) == len(prompts)
    assert sum(r.model == "strong" for r in rows) == prompts.count(LONG)


def test_a_client_leaving_mid_stream_is_logged_as_client_closed() -> None:
    slow = FakeUpstream("slow", word_delay_s=0.2)
    with upstreams(slow) as servers:
        config = {"upstreams": [{"name": "slow", "base_url": f"{servers['slow'].url}/v1"}]}
        with gateway(config) as (server, ledger):
            body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": SHORT}]}
            with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
                first = next(response.iter_lines())
            assert first.startswith("data: ")
            time.sleep(0.5)  # give the gateway time to notice
    rows = ledger.list_requests()
    assert [(r.model, r.status) for r in rows] == [("slow", "client_closed")]
    assert rows[0].latency_ms < 1500  # the full answer would take 6 x 0.2 s


@pytest.mark.postgres
def test_rows_and_budgets_work_on_a_postgresql_ledger(cheap_strong: Any, postgres_url: str) -> None:
    servers, _, _ = cheap_strong
    import uuid

    ledger = Ledger(postgres_url)
    team = f"pg-team-{uuid.uuid4().hex[:8]}"  # a server shared with earlier runs may hold other teams' spend
    worst = expected_cost(STRONG, len(SHORT.encode()) + 4, 20)
    config = two_tier(servers["cheap"], servers["strong"], keys=[{"name": team, "key": "sk-pg", "budget_usd": worst}])
    with gateway(config, ledger=ledger) as (server, _):
        oai = client(server, "sk-pg")
        oai.chat.completions.create(model="strong", messages=[{"role": "user", "content": SHORT}], max_tokens=20)
        with pytest.raises(openai.RateLimitError):
            oai.chat.completions.create(model="strong", messages=[{"role": "user", "content": SHORT}], max_tokens=20)
    rows = [r for r in ledger.list_requests(run_id="test-run") if r.api_key == team]
    assert [r.status for r in rows] == ["ok", "rejected"]
    with gateway(config, ledger=ledger) as (server, _), pytest.raises(openai.RateLimitError):
        client(server, "sk-pg").chat.completions.create(model="strong", messages=[{"role": "user", "content": SHORT}],
                                                        max_tokens=20)


def test_an_upstream_without_usage_is_priced_from_estimated_tokens() -> None:
    import math

    quiet = FakeUpstream("quiet", send_usage=False)
    with upstreams(quiet) as servers:
        config = {"upstreams": [{"name": "quiet", "base_url": f"{servers['quiet'].url}/v1", **CHEAP}]}
        with gateway(config) as (server, ledger):
            oai = client(server)
            plain = oai.chat.completions.create(model="quiet", messages=[{"role": "user", "content": LONG}])
            streamed = list(oai.chat.completions.create(model="quiet", stream=True,
                                                        messages=[{"role": "user", "content": LONG}]))
    answer = plain.choices[0].message.content or ""
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == answer
    expected = (math.ceil(len(LONG) / 4), math.ceil(len(answer) / 4))  # about four characters a token
    rows = ledger.list_requests()
    assert len(rows) == 2
    for row in rows:
        assert (row.prompt_tokens, row.completion_tokens) == expected and row.extra["tokens_estimated"] is True
        assert row.cost_usd == pytest.approx(expected_cost(CHEAP, *expected))


class SlowBatchRouter:
    """Routes like LengthRouter but takes 50 ms a call, like embedding a batch; may route many prompts at once."""

    def __init__(self, models: list[str], threshold_chars: int, batch: bool) -> None:
        self.inner = LengthRouter(models, threshold_chars)
        self.models = models
        self.batch_sizes: list[int] = []
        if batch:
            self.route_many = self._route_many

    def route(self, prompt: str, knob: float) -> Any:
        time.sleep(0.05)
        self.batch_sizes.append(1)
        return self.inner.route(prompt, knob)

    def _route_many(self, prompts: list[str], knob: float) -> list[Any]:
        time.sleep(0.05)
        self.batch_sizes.append(len(prompts))
        return [self.inner.route(p, knob) for p in prompts]


@pytest.mark.parametrize("batch", [True, False])
def test_concurrent_routing_decisions_are_batched_when_the_router_can(cheap_strong: Any, batch: bool) -> None:
    import asyncio

    servers, _, _ = cheap_strong
    router = SlowBatchRouter(["cheap", "strong"], THRESHOLD_CHARS, batch)
    prompts = [SHORT if i % 2 else LONG for i in range(24)]
    knobs = ["0.5" if i % 4 < 2 else "0.99" for i in range(24)]

    async def fire(url: str) -> list[str]:
        oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
        replies = await asyncio.gather(*(oai.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": p}], extra_headers={"X-Truecost-Knob": k})
            for p, k in zip(prompts, knobs, strict=True)))
        await oai.close()
        return [(r.choices[0].message.content or "").split()[0] for r in replies]

    with gateway(two_tier(servers["cheap"], servers["strong"]), routers={"auto": router}) as (server, ledger):
        answered_by = asyncio.run(fire(server.url))
    reference = LengthRouter(["cheap", "strong"], THRESHOLD_CHARS)
    assert answered_by == [reference.route(p, float(k)).model for p, k in zip(prompts, knobs, strict=True)]
    assert sum(router.batch_sizes) == len(prompts)
    if batch:
        assert len(router.batch_sizes) < len(prompts) / 2  # requests that arrive together share a router call
    else:
        assert router.batch_sizes == [1] * len(prompts)
    scores = sorted(r.router_score for r in ledger.list_requests())
    assert scores == sorted(reference.route(p, 0.5).score for p in prompts)


class FastRouter:
    """Routes like LengthRouter, says whether its decisions are fast (as a static-MiniLM router does), and records
    the threads it ran on."""

    def __init__(self, models: list[str], threshold_chars: int, fast: bool) -> None:
        self.inner = LengthRouter(models, threshold_chars)
        self.models = models
        self.fast_decisions = fast
        self.threads: list[str] = []

    def route(self, prompt: str, knob: float) -> Any:
        import threading

        self.threads.append(threading.current_thread().name)
        return self.inner.route(prompt, knob)


@pytest.mark.parametrize("fast", [True, False])
def test_a_fast_router_decides_inline_and_a_slow_one_on_a_worker_thread(cheap_strong: Any, fast: bool) -> None:
    import threading

    servers, _, _ = cheap_strong
    router = FastRouter(["cheap", "strong"], THRESHOLD_CHARS, fast)
    with gateway(two_tier(servers["cheap"], servers["strong"]), routers={"auto": router}) as (server, ledger):
        oai = client(server)
        answers = [oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": p}])
                   for p in (SHORT, LONG, SHORT)]
        server_threads = {t.name for t in threading.enumerate()}
    assert [(a.choices[0].message.content or "").split()[0] for a in answers] == ["cheap", "strong", "cheap"]
    rows = ledger.list_requests()
    assert len(router.threads) == len(rows) == 3
    worker = [name for name in router.threads if name.startswith("AnyIO worker")]
    if fast:  # on the server's event-loop thread, with no wait for a batch
        assert worker == [] and set(router.threads) <= server_threads
        assert all("route_queue_ms" not in r.extra for r in rows)
    else:
        assert worker == router.threads and all("route_queue_ms" in r.extra for r in rows)
