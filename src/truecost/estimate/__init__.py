"""estimate: FLOPs, memory, time, GPU-hours, dollars, energy and CO2 before spending; TCO and levers.

This is the only place that turns quantities into dollars; other parts call the functions below.
"""

from truecost.estimate.costing import retrain_cost_usd, token_price_usd, training_tokens_cost_usd
from truecost.estimate.pricing import ComputePrices, co2_kg, compute_cost_usd, compute_energy_kwh

__all__ = ["ComputePrices", "co2_kg", "compute_cost_usd", "compute_energy_kwh", "retrain_cost_usd",
           "token_price_usd", "training_tokens_cost_usd"]
