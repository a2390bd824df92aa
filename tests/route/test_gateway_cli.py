"""`truecost gateway` as a user runs it: config errors as one line, --check, and a real serve with its run record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest
import yaml

from tests.route.gateway_servers import FakeUpstream, free_port, upstreams, wait_healthy
from truecost.errors import UserError
from truecost.ledger import Ledger
from truecost.route.gateway import load_gateway_settings


def truecost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "truecost", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("doc", "needle"), [
    ({"upstreams": [{"name": "a", "base_url": "localhost:9000"}]}, "upstreams.0.base_url"),
    ({"upstreams": [{"name": "a", "base_url": "http://x", "timeout": 3}]}, "upstreams.0.timeout"),
    ({"upstreams": []}, "upstreams"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}], "routes": {"auto": {"models": ["b"]}}},
     "no upstream named b"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}], "routes": {"auto": {"models": ["a"], "knob": -1}}},
     "routes.auto.knob"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}], "keys": [{"name": "k", "budget_usd": 1}]},
     "keys.0"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}],
      "routes": {"auto": {"router": "r", "knob": 1, "strong_share": 0.2}}}, "not both"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}], "routes": {"auto": {"router": "r", "strong_share": 2}}},
     "routes.auto.strong_share"),
    ({"upstreams": [{"name": "a", "base_url": "http://x", "input_usd_per_1m": 1}]}, "output_usd_per_1m"),
    ({"upstreams": [{"name": "a", "base_url": "http://x", "provider": "azure"}]}, "api_version"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}], "budgets": [{"scope": "org", "name": "x", "usd": 1}]},
     "budgets.0.scope"),
    ({"upstreams": [{"name": "a", "base_url": "http://x"}], "routes": {"r": {"models": ["a"],
                                                                            "cascade": {"pattern": "("}}}},
     "not a regular expression"),
])
def test_config_mistakes_name_the_field(tmp_path: Path, doc: object, needle: str) -> None:
    path = write(tmp_path / "gateway.yaml", doc)
    with pytest.raises(UserError) as caught:
        load_gateway_settings(path)
    assert needle in str(caught.value) and str(path) in str(caught.value)


def test_cli_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("upstreams: [unclosed\n", encoding="utf-8")
    for args, needle in ((["gateway", "--config", "missing.yaml"], "does not exist"),
                         (["gateway", "--config", "broken.yaml"], "not valid YAML")):
        result = truecost(*args)
        assert result.returncode == 2
        assert needle in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_check_validates_and_prints_the_routes_as_json(tmp_path: Path) -> None:
    write(tmp_path / "gateway.yaml", {
        "upstreams": [{"name": "small", "base_url": "http://127.0.0.1:1/v1"},
                      {"name": "large", "base_url": "http://127.0.0.1:2/v1"}],
        "routes": {"auto": {"length_router": {"threshold_chars": 100}, "models": ["small", "large"], "knob": 0.3}}})
    result = truecost("gateway", "--config", "gateway.yaml", "--check", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["routes"] == {"auto": {"router": "LengthRouter", "models": ["small", "large"], "knob": 0.3}}
    assert doc["upstreams"] == {"small": "http://127.0.0.1:1/v1", "large": "http://127.0.0.1:2/v1"}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_then_closes_its_serve_run_when_stopped(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    with upstreams(FakeUpstream("small"), FakeUpstream("large")) as servers:
        write(tmp_path / "gateway.yaml", {
            "listen": {"port": port}, "name": "test-gateway", "log_text": True,
            "upstreams": [{"name": n, "base_url": f"{s.url}/v1", "input_usd_per_1m": 1.0,
                           "output_usd_per_1m": 4.0} for n, s in servers.items()],
            "routes": {"auto": {"length_router": {"threshold_chars": 20}, "models": ["small", "large"]}}})
        process = subprocess.Popen([sys.executable, "-m", "truecost", "gateway", "--config", "gateway.yaml",
                                    "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_healthy(process, f"http://127.0.0.1:{port}")
            oai = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
            reply = oai.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        finally:
            process.send_signal(stop_signal)
            stdout, stderr = process.communicate(timeout=60)
    assert reply.choices[0].message.content.startswith("small answers")
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["requests"] == 1 and summary["ok"] == 1
    ledger = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}")
    (run,) = ledger.list_runs(kind="serve")
    assert run.name == "test-gateway" and run.status == "completed"
    assert run.results["upstream_cost_usd"] == pytest.approx(summary["upstream_cost_usd"]) and run.wall_seconds > 0
    (row,) = ledger.list_requests(run_id=run.id)
    assert row.model == "small" and row.prompt == "hi" and row.output == reply.choices[0].message.content
    assert row.cost_usd > 0
    assert row.cost_usd == pytest.approx((row.prompt_tokens * 1.0 + row.completion_tokens * 4.0) / 1e6)
    assert run.tokens == row.prompt_tokens + row.completion_tokens


def test_ledger_spend_sums_gateway_requests_by_team_and_tag_over_a_time_range(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from truecost.ledger import RequestRecord

    ledger = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}")
    day = datetime(2026, 5, 4, 12, tzinfo=UTC)
    ledger.log_requests([
        RequestRecord(timestamp=day, model="m", team="red", tags=["a", "b"], cost_usd=0.5, prompt_tokens=10),
        RequestRecord(timestamp=day, model="m", team="red", cache_hit=True, saved_usd=0.5, tags=["a"]),
        RequestRecord(timestamp=day, model="m", team="blue", cost_usd=0.25),
        RequestRecord(timestamp=day.replace(day=9), model="m", team="blue", cost_usd=9.0)])
    by_team = truecost("ledger", "spend", "--by", "team", "--until", "2026-05-05", "--json")
    by_tag = truecost("ledger", "spend", "--by", "tag", "--json")
    wrong = truecost("ledger", "spend", "--by", "colour")
    assert by_team.returncode == 0, by_team.stderr
    assert [(r["group"], r["requests"], r["cost_usd"], r["saved_usd"], r["cache_hits"])
            for r in json.loads(by_team.stdout)] == [("red", 2, 0.5, 0.5, 1), ("blue", 1, 0.25, 0.0, 0)]
    assert {r["group"]: r["requests"] for r in json.loads(by_tag.stdout)} == {"a": 2, "b": 1}
    assert wrong.returncode == 2 and "colour" in wrong.stderr


def test_old_price_names_still_read_with_a_deprecation_warning() -> None:
    from truecost.route.gateway import parse_gateway_settings

    with pytest.warns(FutureWarning, match="prompt_usd_per_1m_tokens"):
        settings = parse_gateway_settings({"upstreams": [{"name": "a", "base_url": "http://x",
                                                          "prompt_usd_per_1m_tokens": 1.5,
                                                          "completion_usd_per_1m_tokens": 6.0}]})
    price = settings.upstreams[0].price
    assert price is not None and (price.input_usd_per_1m, price.output_usd_per_1m) == (1.5, 6.0)


def test_a_semantic_cache_without_minilm_installed_is_refused_in_one_line(tmp_path: Path) -> None:
    """The semantic cache embeds with MiniLM: without its package the gateway used to fail at startup with a
    traceback that blamed "this router". A package of the same name without the weights shadows the real one."""
    from truecost.minilm import MINILM_PACKAGE

    shadow = tmp_path / "shadow" / MINILM_PACKAGE
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("", encoding="utf-8")
    write(tmp_path / "gateway.yaml", {"listen": {"port": free_port()},
                                      "upstreams": [{"name": "small", "base_url": "http://127.0.0.1:1/v1"}],
                                      "routes": {"auto": {"models": ["small"]}},
                                      "cache": {"enabled": True, "semantic": {}}})
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")])}
    for extra in (["--check"], []):
        result = subprocess.run([sys.executable, "-m", "truecost", "gateway", "--config", "gateway.yaml", *extra],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 2, result.stderr
        assert "cache.semantic" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
