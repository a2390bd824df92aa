"""The dollar questions other parts ask the estimate module (stable signatures, calibrated internals).

- curate: what are N removed training tokens worth for the target plan?
- monitor: what does one retrain of the target cost?
- route/gateway/review: what does a request to model M with these token counts cost?

Each takes the project's `Config` explicitly; None means the defaults (only the CLI reads ./truecost.toml).
"""

from __future__ import annotations

import functools
from typing import Any

from truecost.config import Config
from truecost.errors import UserError
from truecost.estimate.catalogue import api_prices, find_model
from truecost.estimate.pricing import TokenPrice, token_cost_usd
from truecost.estimate.settings import estimate_settings
from truecost.estimate.training import TrainingSpec, estimate_training, make_spec


def target_spec(cfg: Config, **changes: Any) -> TrainingSpec:
    """The training plan truecost.toml describes (`[target]` on `[hardware]`), with optional changes."""
    target, hw = cfg.target, cfg.hardware
    if target.params is not None:
        model: dict[str, Any] = {"params": target.params}
    else:
        try:
            model = {"model": find_model(target.model).name}
        except UserError as exc:
            raise UserError(f"truecost.toml [target]: {exc}; or set target.params") from exc
    fields: dict[str, Any] = {
        **model, "tokens": target.training_tokens, "gpu": hw.gpu, "gpus": hw.gpus, "precision": target.precision,
        "method": target.method, "seq_len": target.seq_len, "pricing": hw.pricing,
        "price_per_gpu_hour": hw.price_per_gpu_hour, "pue": hw.pue, "grid_kg_co2_per_kwh": hw.grid_kg_co2_per_kwh,
        "gpu_overrides": cfg.gpus, "duplicate_share": estimate_settings(cfg).duplicate_share}
    fields.update(changes)
    return make_spec(**fields)


def training_tokens_cost_usd(tokens: float, config: Config | None = None) -> float:
    """Median (p50) dollars to train the target model (`config.target`; None: the defaults) on `tokens` tokens,
    once."""
    cfg = config if config is not None else Config()
    est = estimate_training(target_spec(cfg), with_levers=False)
    return float(tokens) * est.cost_usd["p50"] / cfg.target.training_tokens


def retrain_cost_usd(config: Config | None = None) -> float:
    """Median dollars of one retraining run of the target plan (its `training_tokens` once; None: the defaults)."""
    cfg = config if config is not None else Config()
    return training_tokens_cost_usd(cfg.target.training_tokens, cfg)


def model_token_price(model: str, config: Config | None = None) -> TokenPrice | None:
    """The per-token price of `model`: truecost.toml `[estimate.api_prices]` first, then the dated catalogue
    (`data/api_prices.csv`), then the `genai-prices` package's snapshot (hundreds of models, kept up to date by
    its maintainers; `pip install -U genai-prices` refreshes it); None when none knows the model. A catalogue row
    takes its cached-input rate from genai-prices when both list the same input and output rates. `config` None:
    no project prices, only the catalogues (the library never reads ./truecost.toml itself)."""
    cfg = config if config is not None else Config()
    for name, setting in estimate_settings(cfg).api_prices.items():
        if name.lower() == model.lower():
            return setting.to_price()
    packaged = packaged_token_price(model)
    row = api_prices().get(model.lower())
    if row is None:
        return packaged
    same = packaged is not None and (packaged.input_usd_per_1m, packaged.output_usd_per_1m) == (
        row.usd_per_1m_input, row.usd_per_1m_output)
    return TokenPrice(row.usd_per_1m_input, row.usd_per_1m_output,
                      cached_input_usd_per_1m=packaged.cached_input_usd_per_1m if same and packaged else None)


@functools.lru_cache(maxsize=512)
def packaged_token_price(model: str) -> TokenPrice | None:
    """`model`'s price in the genai-prices snapshot (base tier), or None (package absent or model unknown)."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    try:
        found = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model).model_price
    except (LookupError, ValueError):
        return None

    def rate(value: Any) -> float | None:
        value = getattr(value, "base", value)  # tiered prices: the first tier
        return None if value is None else float(value)

    input_rate, output_rate = rate(found.input_mtok), rate(found.output_mtok)
    if input_rate is None or output_rate is None:
        return None
    return TokenPrice(input_rate, output_rate, cached_input_usd_per_1m=rate(found.cache_read_mtok))


def token_price_usd(model: str, prompt_tokens: int, completion_tokens: int, config: Config | None = None
                    ) -> float | None:
    """Dollars for one request to `model` (see `model_token_price`); None when no price is known."""
    price = model_token_price(model, config)
    return None if price is None else token_cost_usd(price, prompt_tokens, completion_tokens)
