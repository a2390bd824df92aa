"""What answer quality is worth in dollars: the monitor's retrain decision asks these (pure functions).

A quality drop is on a 0..1 scale (the share of answers that got worse); `value_of_quality_usd` is what one unit
of quality is worth on one request.
"""

from __future__ import annotations


def quality_loss_usd(quality_drop: float, value_of_quality_usd: float, requests_per_day: float,
                     horizon_days: float) -> float:
    """Dollars lost over `horizon_days` when quality is `quality_drop` lower on every request (a rise loses 0)."""
    return max(quality_drop, 0.0) * value_of_quality_usd * requests_per_day * horizon_days


def break_even_quality_drop(retrain_cost_usd: float, value_of_quality_usd: float, requests_per_day: float,
                            horizon_days: float) -> float | None:
    """The quality drop whose loss over the horizon equals one retrain; None when quality is worth nothing."""
    per_unit_usd = quality_loss_usd(1.0, value_of_quality_usd, requests_per_day, horizon_days)
    return retrain_cost_usd / per_unit_usd if per_unit_usd > 0 else None


def retried_answer_usd(request_usd: float, retries: int = 1) -> float:
    """What a wrong answer costs when it is retried: the wasted call plus `retries` more at the same price."""
    return request_usd * (1 + retries)
