"""The dollars of answer quality (the monitor's decision asks these): checked against the quantities by hand."""

from __future__ import annotations

import pytest

from truecost.estimate.quality import break_even_quality_drop, quality_loss_usd, retried_answer_usd


def test_a_quality_drop_costs_its_share_of_every_request_over_the_horizon() -> None:
    # 5% worse answers, each unit of quality worth $0.002 a request, 10,000 requests a day for 30 days.
    assert quality_loss_usd(0.05, 0.002, 10_000, 30) == pytest.approx(30.0)
    assert quality_loss_usd(-0.05, 0.002, 10_000, 30) == 0.0  # better answers lose nothing


def test_at_the_break_even_drop_the_loss_equals_one_retrain() -> None:
    drop = break_even_quality_drop(450.0, 0.002, 10_000, 30)
    assert drop is not None and quality_loss_usd(drop, 0.002, 10_000, 30) == pytest.approx(450.0)
    assert break_even_quality_drop(450.0, 0.0, 10_000, 30) is None


def test_a_retried_answer_costs_the_wasted_call_and_the_retries() -> None:
    assert retried_answer_usd(0.0003) == pytest.approx(0.0006)
    assert retried_answer_usd(0.0003, retries=2) == pytest.approx(0.0009)
