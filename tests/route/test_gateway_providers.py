"""Providers and clients: the official openai and anthropic clients through the gateway, to OpenAI-compatible and
Anthropic upstreams, streamed and not; embeddings; Azure's URL shape."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.route.gateway_servers import FakeUpstream, serving, upstreams, words
from tests.route.test_gateway import CHEAP, client, expected_cost, gateway

PROMPT = "Name three prime numbers."


@pytest.fixture(scope="module")
def both_kinds() -> Any:
    oai, claude = FakeUpstream("oai"), FakeUpstream("claude")
    with upstreams(oai, claude, anthropic=("claude",)) as servers:
        config = {"upstreams": [
            {"name": "oai", "base_url": f"{servers['oai'].url}/v1", **CHEAP},
            {"name": "claude", "provider": "anthropic", "base_url": servers["claude"].url, "model": "claude-x",
             "api_key": "sk-ant-upstream", **CHEAP}], "log_text": True}
        yield config, oai, claude


@pytest.mark.parametrize("upstream", ["oai", "claude"])
def test_openai_and_anthropic_clients_reach_both_kinds_of_upstream(both_kinds: Any, upstream: str) -> None:
    config, oai, claude = both_kinds
    expected = f"{upstream} answers a {len(PROMPT)} character prompt"
    with gateway(config) as (server, ledger):
        openai_client = client(server)
        plain = openai_client.chat.completions.create(model=upstream, messages=[{"role": "user", "content": PROMPT}])
        streamed = list(openai_client.chat.completions.create(
            model=upstream, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": PROMPT}]))
        claude_client = anthropic.Anthropic(base_url=server.url, api_key="none", max_retries=0, timeout=20)
        message = claude_client.messages.create(model=upstream, max_tokens=50, system="Be brief.",
                                                messages=[{"role": "user", "content": PROMPT}])
        with claude_client.messages.stream(model=upstream, max_tokens=50,
                                           messages=[{"role": "user", "content": PROMPT}]) as stream:
            streamed_text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert plain.choices[0].message.content == expected
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == words(expected)
    assert message.content[0].text == expected and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == words(expected)
    assert streamed_text == expected and final.usage.output_tokens == words(expected)
    rows = ledger.list_requests()
    assert [r.model for r in rows] == [upstream] * 4 and all(r.status == "ok" for r in rows)
    for row in rows:
        assert row.output == expected and row.completion_tokens == words(expected)
        assert row.cost_usd == pytest.approx(expected_cost(CHEAP, row.prompt_tokens, row.completion_tokens))
        assert not row.extra.get("tokens_estimated")
    assert [r.extra.get("api") for r in rows] == [None, None, "anthropic", "anthropic"]
    if upstream == "claude":
        sent = claude.received[-1]
        assert sent["model"] == "claude-x" and sent["_headers"]["x-api-key"] == "sk-ant-upstream"
        assert sent["_headers"]["anthropic-version"] == "2023-06-01"
        # The system prompt went to Anthropic's `system` field, not into the messages.
        assert claude.received[2]["system"] == "Be brief." and len(claude.received[2]["messages"]) == 1
        assert claude.received[0]["max_tokens"] == 4096  # Anthropic requires it; the OpenAI request had none
    else:
        assert oai.received[2]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_embeddings_are_routed_priced_and_logged() -> None:
    emb = FakeUpstream("emb")
    with upstreams(emb) as servers:
        config = {"upstreams": [{"name": "emb", "base_url": f"{servers['emb'].url}/v1", "model": "text-emb",
                                 "input_usd_per_1m": 0.02, "output_usd_per_1m": 0.0}]}
        with gateway(config) as (server, ledger):
            result = client(server).embeddings.create(model="emb", input=["one two", "three"])
    assert [d.embedding for d in result.data] == [[7.0, 1.0], [5.0, 1.0]]
    assert emb.received[0]["model"] == "text-emb"
    (row,) = ledger.list_requests()
    assert row.model == "emb" and row.prompt_tokens == 3 and row.completion_tokens == 0
    assert row.cost_usd == pytest.approx(3 * 0.02 / 1e6)


def test_azure_upstreams_get_the_deployment_path_api_version_and_api_key_header() -> None:
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def chat(deployment: str, request: Request) -> JSONResponse:
        seen.append({"deployment": deployment, "query": dict(request.query_params),
                     "key": request.headers.get("api-key"), "auth": request.headers.get("authorization")})
        return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": deployment,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": "azure says hi"},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})

    with serving(app) as azure:
        config = {"upstreams": [{"name": "az", "provider": "azure", "base_url": azure.url, "model": "gpt4o-prod",
                                 "api_version": "2024-10-21", "api_key": "azure-secret"}]}
        with gateway(config) as (server, _):
            reply = client(server).chat.completions.create(model="az", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "azure says hi"
    assert seen == [{"deployment": "gpt4o-prod", "query": {"api-version": "2024-10-21"}, "key": "azure-secret",
                     "auth": None}]
