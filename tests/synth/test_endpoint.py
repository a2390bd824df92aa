"""synth through a real OpenAI-compatible HTTP server on 127.0.0.1, driven by the official `openai` client:
examples, report and ledger run; retries with backoff; a budget that is never passed; decontamination of
planted evaluation items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.synth.conftest import DOCS, write_jsonl
from tests.synth.fake_openai import ServerState, free_port, serve
from truecost.errors import UserError
from truecost.estimate.pricing import TokenPrice, token_cost_usd
from truecost.ledger import Ledger
from truecost.synth import make_settings, run_synth
from truecost.synth.budget import Budget
from truecost.synth.endpoint import prompt_tokens_bound


def _settings(url: str, seeds: Path, **extra: object) -> object:
    return make_settings(generator=f"openai:{url}#gpt-4o-mini", seeds=[str(seeds)], backoff_s=0.01, **extra)


def test_qa_run_writes_examples_report_and_a_priced_ledger_run(seed_docs: Path, tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with serve() as (url, state):
        run = run_synth(_settings(url, seed_docs), tmp_path / "out", ledger=ledger)
    report = run.report
    assert state.requests == len(DOCS) == report["requests"]["sent"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "kept" / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == report["accepted"] > 0
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        p = row["provenance"]
        assert p["generator"] == "gpt-4o-mini" and p["template"] == "qa-v1" and p["seed_id"] in DOCS
        assert p["run_id"] == report["run_id"]
        # grounded: the answer is the first sentence of the document the question came from
        assert row["messages"][1]["content"] in DOCS[p["seed_id"]]
    # the dollars are the catalogue price times the tokens the server reported, computed independently here
    price = TokenPrice(0.15, 0.60)
    tokens = report["tokens"]
    assert report["cost"]["api_usd"] == pytest.approx(token_cost_usd(price, tokens["in"], tokens["out"]), rel=1e-6)
    total = report["cost"]["api_usd"] + report["cost"]["compute_usd"]
    assert report["cost"]["cost_per_accepted_usd"] == pytest.approx(total / report["accepted"], rel=1e-4)
    assert report["cost"]["api_price_basis"]["gpt-4o-mini"].startswith("sourced:")
    record = ledger.get_run(report["run_id"])
    assert (record.kind, record.status, record.tokens) == ("synth", "completed", tokens["in"] + tokens["out"])
    assert record.cost_usd == pytest.approx(report["cost"]["total_usd"])
    assert record.results["cost_per_accepted_usd"] == report["cost"]["cost_per_accepted_usd"]
    assert record.results["acceptance_by_filter"]["parse"] == 1.0
    assert (tmp_path / "out" / "_COMPLETE").is_file()


def test_retries_with_backoff_then_succeed(seed_docs: Path) -> None:
    with serve(ServerState(fail_first=3)) as (url, state):
        run = run_synth(_settings(url, seed_docs, concurrency=1, retries=4))
    assert state.requests == len(DOCS) + 3
    assert run.report["requests"]["retried"] == 3 and run.report["requests"]["answered"] == len(DOCS)


def test_an_unreachable_endpoint_fails_in_one_line_after_its_retries(seed_docs: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens there
    with pytest.raises(UserError) as err:
        run_synth(_settings(url, seed_docs, retries=2))
    assert f"endpoint {url} unreachable after 3 tries" in str(err.value) and "\n" not in str(err.value)


def test_request_budget_is_never_passed_under_concurrency(seed_docs: Path) -> None:
    with serve(ServerState(delay_s=0.2)) as (url, state):
        run = run_synth(_settings(url, seed_docs, per_seed=3, concurrency=8, max_requests=5))
    assert state.requests == 5 and state.max_in_flight > 1
    assert run.report["requests"]["sent"] == 5 and run.report["requests"]["not_sent_budget"] == 3 * len(DOCS) - 5
    assert run.report["budget"]["stopped_by"] == "max_requests=5 reached"


def test_dollar_budget_reserves_the_worst_case_before_sending(seed_docs: Path, tmp_path: Path) -> None:
    price_in, price_out = 1000.0, 2000.0  # dollars per 1M tokens: large, so a few requests reach the cap
    seeds = [json.loads(line)["text"] for line in seed_docs.read_text().splitlines()]
    # the worst case of one request: every prompt byte a token, and max_new_tokens of output
    worst = token_cost_usd(TokenPrice(price_in, price_out), prompt_tokens_bound(
        [{"role": "user", "content": "Read this text:\n\n" + seeds[0]}]) + 40, 128)
    cap = 2.5 * worst
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with serve(ServerState(delay_s=0.1)) as (url, state):
        run = run_synth(_settings(url, seed_docs, per_seed=2, concurrency=8, max_usd=cap,
                                  price_in_usd_per_1m=price_in, price_out_usd_per_1m=price_out), ledger=ledger)
    report = run.report
    assert 1 <= state.requests <= 3
    assert report["cost"]["total_usd"] <= cap
    assert report["budget"]["stopped_by"] == f"max_usd={cap} reached"
    assert ledger.get_run(report["run_id"]).status == "stopped"
    assert report["cost"]["api_price_basis"]["gpt-4o-mini"].startswith("assumed:")


def test_budget_reservation_accounts_in_flight_money() -> None:
    budget = Budget(max_usd=1.0)
    first = budget.reserve(0.6)
    assert first is not None and budget.reserve(0.6) is None  # the first is still in flight
    budget.settle(first, 0.1)
    assert budget.reserve(0.6) is not None and budget.api_usd == pytest.approx(0.1)


def test_unpriced_model_with_a_dollar_cap_is_refused(seed_docs: Path) -> None:
    with serve() as (url, state), pytest.raises(UserError, match="--max-usd needs a price for my-local-model"):
        run_synth(make_settings(generator=f"openai:{url}#my-local-model", seeds=[str(seed_docs)], max_usd=1.0))
    assert state.requests == 0


def test_planted_evaluation_items_are_removed_and_near_misses_kept(seed_docs: Path, tmp_path: Path) -> None:
    evals = write_jsonl(tmp_path / "exam.jsonl", [
        {"id": "leak-1", "question": "Which worker?", "answer": "The scheduler assigns every incoming job to the "
                                                                "least loaded worker and records the decision"},
        {"id": "near-1", "question": "the cache keeps the most recently used pages in memory and evicts THEN the "
                                     "oldest page when the memory budget is exceeded"},
        {"id": "other", "question": "What is the capital of France and what river runs through it today?"},
    ])
    with serve() as (url, _):
        run = run_synth(_settings(url, seed_docs, eval_sets=[f"exam={evals}"]), tmp_path / "out")
    seeds_kept = {e.provenance["seed_id"] for e in run.examples}
    assert "sched" not in seeds_kept and "cache" in seeds_kept
    removed = [json.loads(line) for line in (tmp_path / "out" / "removed.jsonl").read_text().splitlines()]
    leaks = [r for r in removed if r["filter"] == "decontaminate"]
    assert len(leaks) == 1 and leaks[0]["eval_id"] == "leak-1" and leaks[0]["eval_set"] == "exam"
    assert "assigns every incoming job to the least loaded worker" in leaks[0]["ngram"]
    assert run.report["decontamination"]["sets"]["exam"] == {"items_indexed": 3, "items_too_short": 0,
                                                             "examples_dropped": 1}


def test_evolve_and_paraphrase_tasks_with_a_judge(tmp_path: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": "t1", "prompt": "Summarise the following paragraph in two sentences for a busy reader.",
         "response": "Here is a two sentence summary of the paragraph for the busy reader you mentioned."},
        {"id": "t2", "instruction": "Write a short function that checks whether a number is prime or not."},
        {"id": "t3", "messages": [{"role": "user", "content": "Explain what a hash table is to a new student."}]}])
    with serve(ServerState(judge_score=9)) as (url, state):
        evolved = run_synth(_settings(url, tasks, task="evolve", per_seed=2, judge="self"))
        para = run_synth(_settings(url, tasks, task="paraphrase", judge="self", judge_threshold=10))
    assert evolved.report["generated"] == 6 and evolved.examples
    assert all(e.provenance["response_from"] == "generator" and e.judge_score == 9 for e in evolved.examples)
    assert all(len(e.provenance["seed_id"].split(",")) == 3 for e in evolved.examples)
    # paraphrase keeps t1's own answer and answers t2 and t3 afresh; a threshold of 10 rejects every score of 9
    assert para.examples == [] and para.report["generated"] == 3
    judged = next(f for f in para.report["filters"] if f["filter"] == "judge")
    assert judged["removed_by_rule"] == {"judge_below_threshold": judged["in"]} and judged["in"] > 0
    assert sum(1 for p in state.prompts if p.startswith("Rewrite the following request")) == 3
