"""The `[estimate]` section of truecost.toml: API prices the user knows better, and TCO overrides."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from truecost.config import Config, Section, describe_validation_error
from truecost.errors import UserError


class ApiPriceSetting(Section):
    """Per-1M-token prices of one hosted model, overriding or extending the shipped catalogue."""

    input: float = Field(..., ge=0, description="USD per 1M prompt tokens")
    output: float = Field(..., ge=0, description="USD per 1M completion tokens")


class EstimateSettings(Section):
    """`[estimate]`: `api_prices."model" = {input = 2.5, output = 10}` and `[estimate.tco]` overrides."""

    api_prices: dict[str, ApiPriceSetting] = Field(default_factory=dict)
    tco: dict[str, Any] = Field(default_factory=dict)
    duplicate_share: float = Field(0.10, ge=0, lt=1)


def estimate_settings(config: Config) -> EstimateSettings:
    """Validate `config.estimate`; a typo becomes one UserError line naming the key."""
    try:
        return EstimateSettings.model_validate(config.estimate)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "truecost.toml [estimate]")) from exc
