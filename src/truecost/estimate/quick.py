"""A first, deliberately simple training estimate (6·N·D at 40% of peak) until the calibrated model lands."""

from __future__ import annotations

from typing import Any

from truecost.config import Config

# Dense BF16 peak TFLOP/s and a typical on-demand $/GPU-hour; NVIDIA H100 SXM datasheet (989 TF dense BF16) and
# AWS p5 after the June-2025 price cut (~$3.90/GPU-h, costnimbus.com 2026-03).
_PEAK_TFLOPS = {"H100 SXM": 989.0}
_USD_PER_GPU_HOUR = {"H100 SXM": 3.90}
_KNOWN_PARAMS = {"llama-2-7b": 6.74e9}


def quick_training_estimate(cfg: Config) -> dict[str, Any]:
    """GPU-hours and dollars for the configured target at a flat 40% model-FLOPs utilisation."""
    target, hw = cfg.target, cfg.hardware
    params = target.params or _KNOWN_PARAMS.get(target.model.lower(), 7e9)
    flops = 6.0 * params * target.training_tokens
    peak = _PEAK_TFLOPS.get(hw.gpu, 989.0) * 1e12
    gpu_hours = flops / (0.40 * peak) / 3600.0
    price = hw.price_per_gpu_hour or _USD_PER_GPU_HOUR.get(hw.gpu, 3.90)
    return {"model": target.model, "params": params, "tokens": target.training_tokens, "gpu": hw.gpu,
            "gpus": hw.gpus, "flops": flops, "gpu_hours": gpu_hours, "wall_hours": gpu_hours / hw.gpus,
            "cost_usd": gpu_hours * price}
