"""What each upstream's tokens cost, from `truecost.estimate`: gateway.yaml's own price, else the catalogue.

The gateway never multiplies a price itself: `token_cost_usd` prices every request (cached and reasoning
tokens at their own rates when the price has them) and every budget reservation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from truecost.estimate.pricing import TokenPrice, token_cost_usd
from truecost.route.gateway.settings import GatewaySettings
from truecost.route.gateway.tokens import Usage

if TYPE_CHECKING:
    from truecost.config import Config


class UpstreamPrices:
    """One TokenPrice per upstream, looked up once, with where it came from (config, catalogue or unknown)."""

    def __init__(self, settings: GatewaySettings, config: Config | None) -> None:
        from truecost.estimate.costing import model_token_price

        self._prices: dict[str, tuple[TokenPrice | None, str]] = {}
        for upstream in settings.upstreams:
            if upstream.price is not None:
                self._prices[upstream.name] = (upstream.price.to_price(), "config")
            else:
                price = model_token_price(upstream.upstream_model, config)
                self._prices[upstream.name] = (price, "catalogue" if price is not None else "unknown")

    def source(self, name: str) -> str:
        """config, catalogue or unknown."""
        return self._prices[name][1]

    def cost_usd(self, name: str, usage: Usage) -> float:
        """Dollars for one answer from `name` (0 when its price is unknown)."""
        price = self._prices[name][0]
        if price is None:
            return 0.0
        return token_cost_usd(price, usage.prompt_tokens, usage.completion_tokens,
                              cached_prompt_tokens=usage.cached_prompt_tokens, reasoning_tokens=usage.reasoning_tokens)

    def worst_case_usd(self, names: list[str], prompt_tokens: int, completion_tokens: int) -> float:
        """The most one answer from the dearest of `names` can cost: no cache discount, every completion token
        at the higher of the output and reasoning rates."""
        worst = 0.0
        for name in names:
            price = self._prices[name][0]
            if price is None:
                continue
            reasoning_dearer = (price.reasoning_usd_per_1m or 0.0) > price.output_usd_per_1m
            worst = max(worst, token_cost_usd(price, prompt_tokens, completion_tokens,
                                              reasoning_tokens=completion_tokens if reasoning_dearer else 0))
        return worst
