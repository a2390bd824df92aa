"""A local model as the generator: a tiny random-init Llama (built from a config) generates in batches, its
compute is metered and priced, and the budget stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.estimate.pricing import ComputePrices, compute_cost_usd
from truecost.ledger import Ledger
from truecost.synth import make_settings, run_synth
from truecost.synth.budget import Budget
from truecost.synth.generators import Request, Sampling
from truecost.synth.local import LocalGenerator, resolve_model


def test_batched_generation_counts_tokens_and_keeps_request_order(tiny_model: Path) -> None:
    generator = LocalGenerator(f"hf:{tiny_model}", str(tiny_model), sampling=Sampling(temperature=0.0),
                               batch_size=2)
    requests = [Request(f"r{i}", [{"role": "user", "content": "word " * (1 + 7 * i)}], 6) for i in range(5)]
    replies = generator.generate(requests, Budget(), progress=None)
    assert [r.key for r in replies] == [f"r{i}" for i in range(5)]
    assert all(r.error is None and 1 <= r.completion_tokens <= 6 for r in replies)
    # longer prompts have more prompt tokens, whatever batch they were padded into
    assert [r.prompt_tokens for r in replies] == sorted(r.prompt_tokens for r in replies)
    alone = generator.generate([requests[3]], Budget())[0]
    assert alone.text == replies[3].text  # greedy: padding beside other prompts does not change the answer


def test_local_run_is_priced_by_measured_compute(tiny_model: Path, seed_docs: Path, tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    settings = make_settings(generator=f"hf:{tiny_model}", seeds=[str(seed_docs)], max_new_tokens=8, batch_size=4,
                             max_requests=4)
    run = run_synth(settings, tmp_path / "out", ledger=ledger)
    report = run.report
    assert report["requests"] == {"sent": 4, "answered": 4, "failed": 0, "not_sent_budget": 2, "retried": 0}
    assert report["budget"]["stopped_by"] == "max_requests=4 reached"
    cost = report["cost"]
    assert cost["api_usd"] == 0 and cost["cpu_seconds"] > 0
    assert cost["compute_usd"] == pytest.approx(compute_cost_usd(cost["cpu_seconds"], 0.0, ComputePrices()),
                                                rel=0.05)
    # a random model writes no Q/A pairs: the parse gate says so instead of guessing
    parse = report["filters"][0]
    assert parse["filter"] == "parse" and parse["in"] == 4
    assert parse["out"] + parse["removed_by_rule"].get("no_question_answer", 0) == 4
    record = ledger.get_run(report["run_id"])
    assert record.status == "stopped" and record.tokens == report["tokens"]["in"] + report["tokens"]["out"] > 0


def test_dollar_cap_stops_local_generation_before_it_starts(tiny_model: Path, seed_docs: Path) -> None:
    run = run_synth(make_settings(generator=f"hf:{tiny_model}", seeds=[str(seed_docs)], max_new_tokens=4,
                                  max_usd=1e-12))
    assert run.report["requests"]["sent"] == 0 and run.report["budget"]["stopped_by"] == "max_usd=1e-12 reached"


def test_a_folder_without_a_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="neither a model folder"):
        resolve_model(str(tmp_path))
