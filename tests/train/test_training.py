"""Real training runs of a tiny random-init Llama on real text: it learns, stops, resumes, and is metered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.train.conftest import tiny
from truecost.errors import UserError
from truecost.estimate.pricing import ComputePrices, compute_cost_usd
from truecost.train import train
from truecost.train.data import prepare


def unigram_cross_entropy(train_blocks: np.ndarray, eval_blocks: np.ndarray, vocab: int) -> float:
    """Cross-entropy (nats) of the eval tokens under add-one-smoothed training-token frequencies."""
    counts = np.bincount(train_blocks.ravel(), minlength=vocab) + 1.0
    probs = counts / counts.sum()
    return float(-np.log(probs[eval_blocks[:, 1:].ravel()]).mean())


def test_model_learns_below_unigram_and_the_ledger_holds_the_measured_cost(tmp_path: Path, ledger: Any) -> None:
    config = tiny(tmp_path, max_steps=100, eval={"every_steps": 50, "batches": 6})
    result = train(config, ledger=ledger)

    data = prepare(config)
    seen = data.val[: config.eval.batches * config.micro_batch].numpy()  # the blocks evaluate() scores
    baseline = unigram_cross_entropy(data.train.numpy(), seen, len(data.tokenizer))
    assert result.stopped_by == "completed" and result.steps == 100
    assert result.eval_loss_start > np.log(len(data.tokenizer)) - 0.5  # random init: near-uniform guesses
    assert result.eval_loss_end < result.eval_loss_start - 1.0
    assert result.eval_loss_end < baseline - 0.1, (result.eval_loss_end, baseline)

    record = ledger.get_run(result.run_id)
    assert record.kind == "train" and record.status == "completed"
    assert record.tokens == 100 * config.tokens_per_step == result.tokens
    assert record.cpu_seconds > 0 and record.wall_seconds > 0 and record.energy_kwh > 0
    # The recorded dollars are the measured CPU time at the configured price (this process, no GPU).
    assert record.cost_usd == pytest.approx(compute_cost_usd(record.cpu_seconds, 0.0, ComputePrices()), rel=0.1)
    assert record.cost_usd == pytest.approx(result.cost_usd)
    compare = record.results["measured_vs_estimate"]
    assert compare["cost_usd"]["measured"] == pytest.approx(result.cost_usd)
    assert compare["cost_usd"]["estimated"] > 0 and compare["memory_gib"]["estimated"] > 0
    assert 0 < record.results["mfu"] < 1
    assert record.results["tokens_per_second"] > 0


def test_early_stopping_stops_before_max_steps(tmp_path: Path) -> None:
    # min_delta larger than any improvement possible: the first evaluation after the start counts as "no gain"
    config = tiny(tmp_path, max_steps=200, early_stopping={"patience": 2, "min_delta": 10.0})
    result = train(config)
    assert result.stopped_by == "early_stopping"
    assert result.steps == 2 * config.eval.every_steps
    assert result.status == "stopped"
    assert (Path(result.checkpoint or "") / "_COMPLETE").is_file()
    # without a ledger the result still carries the estimate beside the measurement
    assert result.measured_vs_estimate["cost_usd"]["measured"] == pytest.approx(result.cost_usd)


def test_budget_stops_with_a_checkpoint_and_resume_continues_from_the_same_step(tmp_path: Path,
                                                                                  ledger: Any) -> None:
    steps_allowed = 15
    budget = {"max_tokens": steps_allowed * 64 * 8}
    stopped = train(tiny(tmp_path, name="r", max_steps=30, budget=budget), ledger=ledger)
    assert stopped.stopped_by == "budget" and stopped.budget_limit == "max_tokens"
    assert stopped.steps == steps_allowed
    assert Path(stopped.checkpoint or "").name == f"checkpoint-{steps_allowed}"
    assert ledger.get_run(stopped.run_id).status == "stopped"

    # Still over budget: resuming stops again at once, without training a step.
    again = train(tiny(tmp_path, name="r", max_steps=30, budget=budget), resume=True)
    assert again.stopped_by == "budget" and again.start_step == again.steps == steps_allowed

    resumed = train(tiny(tmp_path, name="r", max_steps=30), resume=True, ledger=ledger)
    assert resumed.start_step == steps_allowed and resumed.steps == 30
    assert resumed.stopped_by == "completed"
    assert resumed.tokens == 30 * 64 * 8  # cumulative over both sessions

    # Same data order, optimizer and schedule state: identical to a run that was never interrupted.
    straight = train(tiny(tmp_path, name="straight", max_steps=30))
    assert resumed.eval_loss_end == pytest.approx(straight.eval_loss_end, abs=1e-4)
    # ... with the extra evaluation made where the budget stopped it
    assert [s for s, _ in resumed.eval_history] == [0, 10, steps_allowed, 20, 30]
    assert [s for s, _ in straight.eval_history] == [0, 10, 20, 30]


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no complete checkpoint"):
        train(tiny(tmp_path, name="never"), resume=True)


def test_lora_trains_only_adapters_and_qlora_on_cpu_says_why_not(tmp_path: Path) -> None:
    result = train(tiny(tmp_path, method="lora", max_steps=10, lora={"rank": 4}))
    assert 0 < result.params_trainable < result.params_total / 2
    assert result.eval_loss_end < result.eval_loss_start
    from safetensors import safe_open

    with safe_open(str(Path(result.checkpoint or "") / "adapter_model.safetensors"), framework="pt") as saved:
        names = list(saved.keys())
    assert names and all("lora_" in name for name in names)  # only the adapters; the base reloads from its source
    more = train(tiny(tmp_path, method="lora", max_steps=14, lora={"rank": 4}), resume=True)
    assert more.start_step == 10 and more.steps == 14
    with pytest.raises(UserError, match="qlora needs a CUDA GPU"):
        train(tiny(tmp_path, method="qlora"))


def test_cli_train_json_prints_the_contract_and_nothing_else(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import yaml

    from tests.train.conftest import TINY

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "max_steps": 8, "eval": {"every_steps": 4, "batches": 2}}))
    result = subprocess.run([sys.executable, "-m", "truecost", "train", str(config), "--json"], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    for key in ("run_id", "status", "steps", "eval_loss_start", "eval_loss_end", "stopped_by", "tokens_per_second",
                "cost_usd"):
        assert key in data, key
    assert data["estimate"]["cost_usd"] > 0 and data["estimate"]["memory_gib"] > 0
    assert data["status"] == "completed" and data["stopped_by"] == "completed" and data["steps"] == 8
    assert data["measured_vs_estimate"]["cost_usd"]["measured"] == pytest.approx(data["cost_usd"])
    assert "eval loss" in result.stderr  # progress goes to stderr

    from truecost.ledger import Ledger

    record = Ledger(f"sqlite:///{tmp_path / '.truecost' / 'ledger.db'}").get_run(data["run_id"])
    assert record.cost_usd == pytest.approx(data["cost_usd"])
