"""`estimate size`: turn a dollar or FLOP budget into the compute-optimal model, priced with the training model."""

from __future__ import annotations

from typing import Any

from truecost.config import Config
from truecost.estimate.sizing import chinchilla


def right_size(config: Config, *, budget_usd: float | None = None, flops: float | None = None,
               gpu: str | None = None, gpus: int | None = None, pricing: str | None = None,
               price_per_gpu_hour: float | None = None) -> dict[str, Any]:
    """Compute-optimal params/tokens for the budget, its p50 GPU-hours and cost, and same-compute alternatives."""
    from truecost.estimate.costing import target_spec
    from truecost.estimate.training import estimate_training

    law = chinchilla()
    changes: dict[str, Any] = {"model": None, "method": "full", "precision": "bf16", "gpu": gpu, "gpus": gpus,
                               "pricing": pricing, "price_per_gpu_hour": price_per_gpu_hour}
    changes = {k: v for k, v in changes.items() if v is not None or k == "model"}

    def priced(params: float, tokens: float) -> Any:
        spec = target_spec(config, params=params, tokens=tokens, **changes)
        return estimate_training(spec, with_levers=False)

    if flops is None:
        assert budget_usd is not None
        # Cost per FLOP depends on model size (utilisation), so iterate to a fixed point.
        flops = budget_usd / (priced(1e9, 2e10).cost_usd["p50"] / (6 * 1e9 * 2e10))
        for _ in range(6):
            params, tokens = law.compute_optimal(flops)
            est = priced(params, tokens)
            flops *= budget_usd / est.cost_usd["p50"]
    params, tokens = law.compute_optimal(flops)
    est = priced(params, tokens)
    alternatives = []
    for scale in (0.1, 0.3, 3.0, 10.0):
        n = params * scale
        d = flops / (6 * n)
        alternatives.append({"params": n, "tokens": d, "tokens_per_param": d / n, "loss": law.loss(n, d)})
    return {
        "gpu": est.gpu, "gpus": est.gpus, "budget_usd": budget_usd,
        "compute_optimal": {"flops": flops, "params": params, "tokens": tokens, "tokens_per_param": tokens / params,
                            "loss": law.loss(params, tokens), "gpu_hours": est.gpu_hours["p50"],
                            "cost_usd": est.cost_usd["p50"], "cost_usd_p10_p90": [est.cost_usd["p10"],
                                                                                   est.cost_usd["p90"]],
                            "wall_hours": est.wall_hours["p50"]},
        "alternatives": alternatives, "scaling_law": law.source,
        "usd_per_gpu_hour": {"value": est.usd_per_gpu_hour, **est.assumptions["usd_per_gpu_hour"]},
    }
