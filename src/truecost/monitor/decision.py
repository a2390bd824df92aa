"""Retrain now, watch, or do nothing: the quality loss in dollars over the horizon against one retrain's cost.

The loss is (quality drop) x (value of quality per request) x (requests per day) x (horizon days). "Retrain"
needs a quality alarm (so noise alone, at the stated false-alarm rate, never buys a retrain) and the loss at the
chosen confidence (default: the expected loss) above the retrain cost; "watch" covers any other alarm, or a loss
above the cost that no quality alarm confirms yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from truecost.config import Config
from truecost.monitor.settings import MonitorSettings
from truecost.units import DAYS_PER_MONTH, DAYS_PER_YEAR

Action = Literal["retrain", "watch", "none"]


@dataclass(frozen=True)
class Economics:
    """The dollar inputs of the decision, each with where it came from."""

    retrain_cost_usd: float
    value_of_quality_usd: float
    value_reason: str
    requests_per_day: float
    horizon_days: float
    horizon_reason: str
    retrain_cost_reason: str = "given by the caller"

    def bases(self) -> dict[str, str]:
        """How each dollar figure of the decision was obtained: measured, sourced or assumed, and from what."""
        default = self.retrain_cost_reason.startswith("default: ")  # truecost.estimate's dated, cited prices
        retrain = f"sourced: {self.retrain_cost_reason.removeprefix('default: ')}" if default else \
            f"assumed: {self.retrain_cost_reason}"
        return {"expected_loss_usd": "assumed: the measured quality drop x the value of quality, traffic and horizon "
                                     "below, which are defaults or your settings",
                "retrain_cost_usd": retrain,
                "value_of_quality_usd": f"assumed: {self.value_reason}"}

    def loss_usd(self, quality_drop: float) -> float:
        """Dollars lost over the horizon when quality is `quality_drop` lower (0..1 scale) on every request."""
        from truecost.estimate.quality import quality_loss_usd

        return quality_loss_usd(quality_drop, self.value_of_quality_usd, self.requests_per_day, self.horizon_days)

    def break_even_drop(self) -> float | None:
        """The quality drop at which one retrain pays for itself; None when quality is worth nothing."""
        from truecost.estimate.quality import break_even_quality_drop

        return break_even_quality_drop(self.retrain_cost_usd, self.value_of_quality_usd, self.requests_per_day,
                                       self.horizon_days)


def economics_from_config(config: Config, settings: MonitorSettings) -> Economics:
    """Retrain cost from `truecost.estimate`; value, traffic and horizon from `[monitor]`, else their defaults."""
    from truecost.estimate import retrain_cost_usd, retried_answer_usd, token_price_usd

    target = config.target
    if settings.value_of_quality_usd is not None:
        value, value_reason = settings.value_of_quality_usd, "[monitor] value_of_quality_usd"
    else:
        request_usd = token_price_usd("gpt-4o-mini", target.prompt_tokens, target.output_tokens, config) or 0.0
        value = retried_answer_usd(request_usd)
        value_reason = (f"default: a wrong answer wastes the call and costs one retry, 2 x the price of a "
                        f"{target.prompt_tokens}+{target.output_tokens}-token request on gpt-4o-mini "
                        f"(${request_usd:.6f})")
    if settings.horizon_days is not None:
        horizon, horizon_reason = settings.horizon_days, "[monitor] horizon_days"
    elif target.retrains_per_year > 0:
        horizon = DAYS_PER_YEAR / target.retrains_per_year / 2.0
        horizon_reason = (f"default: half the interval between the {target.retrains_per_year:g} scheduled retrains "
                          "a year, the mean wait for the next one")
    else:
        horizon = target.horizon_months * DAYS_PER_MONTH
        horizon_reason = "default: no scheduled retrains, so the loss lasts the whole [target] horizon_months"
    requests = settings.requests_per_day or target.requests_per_day
    if settings.retrain_cost_usd is not None:
        cost, cost_reason = settings.retrain_cost_usd, "[monitor] retrain_cost_usd"
    else:
        cost = retrain_cost_usd(config)
        cost_reason = ("default: truecost.estimate's price of one run of the [target] plan on [hardware] (compute "
                       "only)")
    return Economics(retrain_cost_usd=float(cost), value_of_quality_usd=float(value),
                     value_reason=value_reason, requests_per_day=float(requests), horizon_days=float(horizon),
                     horizon_reason=horizon_reason, retrain_cost_reason=cost_reason)


@dataclass
class Decision:
    """The action and the dollars on both sides."""

    action: Action
    expected_loss_usd: float
    expected_loss_low_usd: float
    retrain_cost_usd: float
    first_alarm_window: int | None
    quality_drop: float
    quality_drop_low: float
    break_even_quality_drop: float | None
    quality_source: str
    quality_drop_basis: str
    quality_drop_rows: int
    reason: str
    economics: dict[str, Any]
    # Each dollar figure's basis (measured / sourced / assumed, and from what): see `Economics.bases`.
    basis: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, dollars rounded to cents."""
        data = asdict(self)
        for key in ("expected_loss_usd", "expected_loss_low_usd", "retrain_cost_usd"):
            data[key] = round(data[key], 2)
        for key in ("quality_drop", "quality_drop_low", "break_even_quality_drop"):
            if data[key] is not None:
                data[key] = round(data[key], 4)
        return data


def decide(quality_drop: float, quality_drop_se: float, quality_alarm: bool, first_alarm_window: int | None,
           economics: Economics, confidence: float = 0.5, quality_source: str = "labels",
           drop_basis: str = "after_alarm", drop_rows: int = 0) -> Decision:
    """Retrain when quality alarmed and the loss (at `confidence`) beats the retrain cost; watch on any alarm."""
    from scipy import stats

    z = float(stats.norm.ppf(confidence))  # 0 at 0.5: the expected loss
    drop_low = quality_drop - z * quality_drop_se
    loss, loss_low = economics.loss_usd(quality_drop), economics.loss_usd(drop_low)
    cost = economics.retrain_cost_usd
    if quality_alarm and loss_low >= cost:
        action: Action = "retrain"
        reason = (f"quality fell by {quality_drop:.3f} (at {confidence:.0%} confidence {drop_low:.3f}), losing "
                  f"${loss_low:,.0f} over {economics.horizon_days:.0f} days, more than a ${cost:,.0f} retrain")
    elif first_alarm_window is not None or loss >= cost:
        action = "watch"
        if drop_basis == "since_change":
            reason = (f"quality alarm too recent to price: the drop so far ({quality_drop:.3f}, ${loss:,.0f}) "
                      f"includes the values that raised it; waiting for more against a ${cost:,.0f} retrain")
        else:
            reason = (f"drift seen, but the loss (${loss:,.0f}; at {confidence:.0%} confidence ${loss_low:,.0f}) "
                      f"does not exceed the ${cost:,.0f} retrain")
    else:
        action = "none"
        reason = f"no alarm; expected loss ${loss:,.0f} is below the ${cost:,.0f} retrain"
    return Decision(action=action, expected_loss_usd=loss, expected_loss_low_usd=loss_low, retrain_cost_usd=cost,
                    first_alarm_window=first_alarm_window, quality_drop=quality_drop, quality_drop_low=drop_low,
                    break_even_quality_drop=economics.break_even_drop(), quality_source=quality_source,
                    quality_drop_basis=drop_basis, quality_drop_rows=drop_rows, reason=reason,
                    economics=asdict(economics), basis=economics.bases())
