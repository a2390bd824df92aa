"""estimate: FLOPs, memory, time, GPU-hours, dollars, energy and CO2 before spending; TCO and levers.

This is the only place that turns quantities into dollars; other parts call the functions below.
"""

from truecost.estimate.architecture import Architecture, architecture_from_hf_config, architecture_from_params
from truecost.estimate.costing import retrain_cost_usd, token_price_usd, training_tokens_cost_usd
from truecost.estimate.pricing import ComputePrices, co2_kg, compute_cost_usd, compute_energy_kwh
from truecost.estimate.training import TrainingEstimate, TrainingSpec, estimate_training, make_spec

__all__ = ["Architecture", "ComputePrices", "TrainingEstimate", "TrainingSpec", "architecture_from_hf_config",
           "architecture_from_params", "co2_kg", "compute_cost_usd", "compute_energy_kwh", "estimate_training",
           "make_spec", "retrain_cost_usd", "token_price_usd", "training_tokens_cost_usd"]
