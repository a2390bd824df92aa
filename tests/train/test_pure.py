"""The pure pieces of the loop: schedule, early stopping, budget, and the pruning arithmetic."""

from __future__ import annotations

import math

import pytest

from truecost.train import make_config
from truecost.train.loop import EarlyStopping, Spend, budget_exceeded, lr_factor
from truecost.train.tune import TrialSummary, savings


def test_cosine_schedule_warms_up_then_decays_to_the_floor() -> None:
    kw = {"warmup_steps": 10, "total_steps": 110, "schedule": "cosine", "min_ratio": 0.1}
    assert lr_factor(0, **kw) == pytest.approx(0.1)
    assert lr_factor(9, **kw) == pytest.approx(1.0)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    # halfway through the decay the cosine is at its midpoint: 0.1 + 0.9 * 0.5
    assert lr_factor(60, **kw) == pytest.approx(0.55)
    assert lr_factor(110, **kw) == pytest.approx(0.1)
    assert lr_factor(60, **{**kw, "schedule": "linear"}) == pytest.approx(0.55)
    assert lr_factor(35, **{**kw, "schedule": "linear"}) == pytest.approx(0.1 + 0.9 * 0.75)
    assert lr_factor(100, **{**kw, "schedule": "constant"}) == 1.0


def test_early_stopping_counts_evaluations_without_enough_improvement() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert not stopper.update(5.0)
    assert not stopper.update(4.95)  # better, but by less than min_delta
    assert stopper.update(4.93)
    assert stopper.best == pytest.approx(4.93)
    never = EarlyStopping(patience=None, min_delta=0.0)
    assert not any(never.update(5.0) for _ in range(10))


def test_budget_names_the_first_limit_reached() -> None:
    config = make_config(budget={"max_usd": 1.0, "max_minutes": 2, "max_tokens": 1000})
    assert budget_exceeded(config, Spend(cost_usd=0.5, wall_seconds=60, tokens=10)) is None
    assert budget_exceeded(config, Spend(cost_usd=1.0)) == "max_usd"
    assert budget_exceeded(config, Spend(wall_seconds=121)) == "max_minutes"
    assert budget_exceeded(config, Spend(tokens=1000)) == "max_tokens"
    assert budget_exceeded(make_config(), Spend(cost_usd=1e9, tokens=10**12)) is None


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
