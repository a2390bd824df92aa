"""The `[estimate]` section of truecost.toml: API prices the user knows better, and TCO overrides."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import Field, ValidationError, model_validator

from truecost.config import Config, Section, describe_validation_error
from truecost.errors import UserError
from truecost.estimate.pricing import TokenPrice

# Share of tokens that exact + near-duplicate removal drops from a typical web-scale corpus: Lee et al. 2022
# ("Deduplicating Training Data Makes Language Models Better") remove 3-13% from C4-like sets; RefinedWeb ~10-30%.
DEFAULT_DUPLICATE_SHARE = 0.10

# Names earlier versions used for the same two prices (truecost.toml, gateway.yaml, outcome files).
DEPRECATED_PRICE_NAMES = {
    "input": "input_usd_per_1m", "output": "output_usd_per_1m",
    "prompt_usd_per_1m_tokens": "input_usd_per_1m", "completion_usd_per_1m_tokens": "output_usd_per_1m",
}


class TokenPriceSetting(Section):
    """Per-1M-token prices of one model, as written in any truecost file: `{input_usd_per_1m = 2.5,
    output_usd_per_1m = 10}`. The old names (`input`/`output`, `prompt_usd_per_1m_tokens`/
    `completion_usd_per_1m_tokens`) are read with a deprecation warning."""

    input_usd_per_1m: float = Field(..., ge=0, description="USD per 1M prompt tokens")
    output_usd_per_1m: float = Field(..., ge=0, description="USD per 1M completion tokens")
    cached_input_usd_per_1m: float | None = Field(None, ge=0, description="USD per 1M cached prompt tokens")
    reasoning_usd_per_1m: float | None = Field(None, ge=0, description="USD per 1M reasoning tokens")

    @model_validator(mode="before")
    @classmethod
    def _rename_deprecated(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for old, new in DEPRECATED_PRICE_NAMES.items():
            if old in out:
                if new in out:
                    raise ValueError(f"set {new} only ({old} is its deprecated name)")
                warnings.warn(f"price field {old!r} is deprecated; write {new!r}", FutureWarning, stacklevel=2)
                out[new] = out.pop(old)
        return out

    def to_price(self) -> TokenPrice:
        """The plain price the estimate functions take."""
        return TokenPrice(self.input_usd_per_1m, self.output_usd_per_1m, self.cached_input_usd_per_1m,
                          self.reasoning_usd_per_1m)


class EstimateSettings(Section):
    """`[estimate]`: `api_prices."model" = {input_usd_per_1m = 2.5, output_usd_per_1m = 10}` and `[estimate.tco]`
    overrides."""

    api_prices: dict[str, TokenPriceSetting] = Field(default_factory=dict)
    tco: dict[str, Any] = Field(default_factory=dict)
    duplicate_share: float = Field(DEFAULT_DUPLICATE_SHARE, ge=0, lt=1,
                                   description="share of training tokens that are duplicates; the de-duplication "
                                               "lever of `estimate train` uses it")


def estimate_settings(config: Config) -> EstimateSettings:
    """Validate `config.estimate`; a typo becomes one UserError line naming the key."""
    try:
        return EstimateSettings.model_validate(config.estimate)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "truecost.toml [estimate]")) from exc
