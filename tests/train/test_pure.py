"""The pure pieces: schedule, early stopping, budget and spend, and the pruning arithmetic."""

from __future__ import annotations

import math

import pytest

from truecost.train import make_config
from truecost.train.early_stopping import EarlyStopping
from truecost.train.spend import Spend, budget_exceeded
from truecost.train.tune import TrialSummary, savings


def _lr_at(schedule: str, steps: list[int]) -> list[float]:
    """Learning-rate multipliers of the Trainer's scheduler built from truecost's `optim` settings."""
    import torch
    from transformers import get_scheduler

    from truecost.train.trainer import _schedule

    config = make_config(max_steps=110, optim={"warmup_steps": 10, "schedule": schedule, "min_lr_ratio": 0.1})
    kwargs = _schedule(config)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(kwargs["lr_scheduler_type"], optimizer, num_warmup_steps=10, num_training_steps=110,
                              scheduler_specific_kwargs=kwargs.get("lr_scheduler_kwargs"))
    out = []
    for step in range(max(steps) + 1):
        if step in steps:
            out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return out


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    # independent formulas: cosine midpoint 0.1 + 0.9 * 0.5; linear 3/4 of the way up from the floor
    assert _lr_at("cosine", [10, 60, 110]) == pytest.approx([1.0, 0.55, 0.1])
    assert _lr_at("linear", [10, 35, 60, 110]) == pytest.approx([1.0, 0.1 + 0.9 * 0.75, 0.55, 0.1])
    assert _lr_at("constant", [5, 100]) == pytest.approx([0.5, 1.0])


def test_spend_adds_sessions_and_never_undercounts() -> None:
    a, b = Spend(wall_seconds=10, cpu_seconds=5, cost_usd=0.5, tokens=100), Spend(cpu_seconds=7, cost_usd=0.25)
    assert a.plus(b).cpu_seconds == 12 and a.plus(b).minus(b) == a
    assert a.most(b) == Spend(wall_seconds=10, cpu_seconds=7, cost_usd=0.5, tokens=100)
    assert Spend.from_dict({**a.to_dict(), "unknown": 1}) == a


def test_early_stopping_counts_evaluations_without_enough_improvement() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert not stopper.update(5.0)
    assert not stopper.update(4.95)  # better, but by less than min_delta
    assert stopper.update(4.93)
    assert stopper.best == pytest.approx(4.93)
    never = EarlyStopping(patience=None, min_delta=0.0)
    assert not any(never.update(5.0) for _ in range(10))


def test_budget_names_the_first_limit_reached() -> None:
    config = make_config(budget={"max_usd": 1.0, "max_minutes": 2, "max_tokens": 1000}).budget
    assert budget_exceeded(config, Spend(cost_usd=0.5, wall_seconds=60, tokens=10)) is None
    assert budget_exceeded(config, Spend(cost_usd=1.0)) == "max_usd"
    assert budget_exceeded(config, Spend(wall_seconds=121)) == "max_minutes"
    assert budget_exceeded(config, Spend(tokens=1000)) == "max_tokens"
    assert budget_exceeded(make_config().budget, Spend(cost_usd=1e9, tokens=10**12)) is None


def test_pruning_savings_are_counted_in_steps_and_dollars() -> None:
    def trial(state: str, steps: int) -> TrialSummary:
        return TrialSummary(number=0, params={}, state=state, best_eval_loss=1.0, steps=steps, max_steps=100,
                            cost_usd=steps * 0.01, cpu_seconds=steps, run_id=None)

    run, full, fraction, dollars = savings([trial("complete", 100), trial("pruned", 20), trial("pruned", 40)])
    assert (run, full) == (160, 300)
    assert fraction == pytest.approx(1 - 160 / 300)
    assert dollars == pytest.approx(140 * 0.01)
    assert savings([]) == (0, 0, 0.0, 0.0)
    assert not math.isnan(savings([trial("complete", 0)])[2])


def test_precision_follows_the_hardware() -> None:
    import torch

    from truecost.errors import UserError
    from truecost.train.model import cpu_supports_bf16, pick_precision

    auto = pick_precision("auto", "cpu")
    assert auto.name == ("bf16" if cpu_supports_bf16() else "fp32") and not auto.loss_scaling
    assert pick_precision("fp32", "cpu").autocast_dtype is None
    assert pick_precision("bf16", "cpu").autocast_dtype == torch.bfloat16
    fp16 = pick_precision("fp16", "cuda")
    assert fp16.autocast_dtype == torch.float16 and fp16.loss_scaling  # fp16 needs loss scaling; bf16 does not
    with pytest.raises(UserError, match="precision: fp16 .*allowed"):
        pick_precision("fp16", "cpu")
