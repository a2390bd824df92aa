"""The dollar questions other parts ask the estimate module (stable signatures; the internals get calibrated).

- curate: what are N removed training tokens worth for the target plan?
- monitor: what does one retrain of the target cost?
- route/gateway: what does a request to model M with these token counts cost?
"""

from __future__ import annotations

from truecost.config import Config, load_config
from truecost.estimate.quick import quick_training_estimate

# Per-1M-token API prices (input, output) in USD; each from the provider's public pricing page, read 2026-11.
# Used only when the user's data carries no cost and truecost.toml sets no price for the model.
_API_PRICES_PER_1M: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),  # openai.com/api/pricing
    "gpt-4o-mini": (0.15, 0.60),  # openai.com/api/pricing
}


def training_tokens_cost_usd(tokens: float, config: Config | None = None) -> float:
    """Median dollars to train the target model (truecost.toml `[target]`) on `tokens` tokens, once."""
    cfg = config or load_config()
    per_token = quick_training_estimate(cfg)["cost_usd"] / cfg.target.training_tokens
    return float(tokens) * per_token


def retrain_cost_usd(config: Config | None = None) -> float:
    """Median dollars of one retraining run of the target plan (its `training_tokens` once)."""
    cfg = config or load_config()
    return training_tokens_cost_usd(cfg.target.training_tokens, cfg)


def token_price_usd(model: str, prompt_tokens: int, completion_tokens: int, config: Config | None = None
                    ) -> float | None:
    """Dollars for one request to `model`, from catalogue per-token prices; None when the model is unknown."""
    prices = _API_PRICES_PER_1M.get(model.lower())
    if prices is None:
        return None
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1e6
