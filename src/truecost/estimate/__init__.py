"""estimate: FLOPs, memory, time, GPU-hours, dollars, energy and CO2 before spending; TCO and levers.

This is the only place that turns quantities into dollars; other parts call the functions below. The names are
loaded on first use, so importing one small module (say `truecost.estimate.pricing`) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truecost.estimate.architecture import Architecture, architecture_from_hf_config, architecture_from_params
    from truecost.estimate.costing import retrain_cost_usd, token_price_usd, training_tokens_cost_usd
    from truecost.estimate.pricing import ComputePrices, co2_kg, compute_cost_usd, compute_energy_kwh
    from truecost.estimate.quality import break_even_quality_drop, quality_loss_usd, retried_answer_usd
    from truecost.estimate.training import TrainingEstimate, TrainingSpec, estimate_training, make_spec

_HOME = {
    "Architecture": "architecture", "architecture_from_hf_config": "architecture",
    "architecture_from_params": "architecture",
    "retrain_cost_usd": "costing", "token_price_usd": "costing", "training_tokens_cost_usd": "costing",
    "ComputePrices": "pricing", "co2_kg": "pricing", "compute_cost_usd": "pricing", "compute_energy_kwh": "pricing",
    "break_even_quality_drop": "quality", "quality_loss_usd": "quality", "retried_answer_usd": "quality",
    "TrainingEstimate": "training", "TrainingSpec": "training", "estimate_training": "training",
    "make_spec": "training",
}

__all__ = ["Architecture", "ComputePrices", "TrainingEstimate", "TrainingSpec", "architecture_from_hf_config",
           "architecture_from_params", "break_even_quality_drop", "co2_kg", "compute_cost_usd",
           "compute_energy_kwh", "estimate_training", "make_spec", "quality_loss_usd", "retrain_cost_usd",
           "retried_answer_usd", "token_price_usd", "training_tokens_cost_usd"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'truecost.estimate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"truecost.estimate.{_HOME[name]}"), name)
