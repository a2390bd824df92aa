"""Turn metered quantities (CPU-seconds, GPU-hours) into dollars, energy and CO2.

Pure functions: the ledger's meter calls these so that every recorded run is priced the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComputePrices:
    """Unit prices and power figures used to price metered compute; every field overridable in truecost.toml."""

    # AWS c7i on-demand, us-east-1: $0.08925/h for 2 vCPU (aws.amazon.com/ec2/pricing, read 2026-11).
    cpu_usd_per_core_hour: float = 0.0446
    # Xeon Sapphire Rapids: 350 W TDP / 56 cores ~ 6.3 W per core under load; 8 W with memory and fans.
    cpu_watts_per_core: float = 8.0
    gpu_usd_per_hour: float = 0.0
    gpu_watts: float = 700.0
    # Data-centre power usage effectiveness; hyperscalers report 1.1-1.2 (Google 2024 environmental report: 1.10).
    pue: float = 1.2
    # US grid average 2023: 0.37 kg CO2 / kWh (EIA, 'How much carbon dioxide is produced per kWh', 2024).
    grid_kg_co2_per_kwh: float = 0.37


def compute_cost_usd(cpu_seconds: float, gpu_hours: float, prices: ComputePrices) -> float:
    """Dollar cost of `cpu_seconds` of core time plus `gpu_hours` of GPU time at `prices`."""
    return cpu_seconds / 3600.0 * prices.cpu_usd_per_core_hour + gpu_hours * prices.gpu_usd_per_hour


def compute_energy_kwh(cpu_seconds: float, gpu_hours: float, prices: ComputePrices) -> float:
    """Facility energy (PUE included) for the metered CPU and GPU time."""
    it_kwh = cpu_seconds / 3600.0 * prices.cpu_watts_per_core / 1000.0 + gpu_hours * prices.gpu_watts / 1000.0
    return it_kwh * prices.pue


def co2_kg(energy_kwh: float, prices: ComputePrices) -> float:
    """Operational CO2 of `energy_kwh` at the configured grid intensity."""
    return energy_kwh * prices.grid_kg_co2_per_kwh


@dataclass(frozen=True)
class TokenPrice:
    """Per-token price of one model, in the one vocabulary every part and file uses: USD per 1M tokens.

    `cached_input_usd_per_1m` prices prompt tokens the provider served from its prompt cache (None: full input
    price); `reasoning_usd_per_1m` prices hidden reasoning tokens (None: the output price).
    """

    input_usd_per_1m: float
    output_usd_per_1m: float
    cached_input_usd_per_1m: float | None = None
    reasoning_usd_per_1m: float | None = None


def token_cost_usd(price: TokenPrice, prompt_tokens: int, completion_tokens: int, *, cached_prompt_tokens: int = 0,
                   reasoning_tokens: int = 0) -> float:
    """Dollars for one request at `price`. `cached_prompt_tokens` are part of `prompt_tokens`; `reasoning_tokens`
    are part of `completion_tokens` (as the OpenAI usage object counts them)."""
    cached = min(max(cached_prompt_tokens, 0), prompt_tokens)
    reasoning = min(max(reasoning_tokens, 0), completion_tokens)
    cached_rate = price.input_usd_per_1m if price.cached_input_usd_per_1m is None else price.cached_input_usd_per_1m
    reasoning_rate = price.output_usd_per_1m if price.reasoning_usd_per_1m is None else price.reasoning_usd_per_1m
    return ((prompt_tokens - cached) * price.input_usd_per_1m + cached * cached_rate
            + (completion_tokens - reasoning) * price.output_usd_per_1m + reasoning * reasoning_rate) / 1e6
