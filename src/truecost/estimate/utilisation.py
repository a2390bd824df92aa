"""The features of the utilisation (MFU) model: what a run's shape says about the share of peak it can reach.

Each feature has a physical reason and is 0 for the reference run (a dense model of 10B active parameters on
A100s with NVLink, 2048-token sequences):

| feature | value | why |
|---|---|---|
| hardware | ln(peak 16-bit TFLOP/s / 312) | a faster chip waits longer, relatively, on memory and launches |
| hardware_x_size | hardware x ln(active params / 1e10) | bigger matmuls recover more of a fast chip's peak |
| small_memory | 1 on cards under 60 GB | 40/48 GB cards force smaller micro-batches and more sharding traffic |
| moe_sparsity | ln(total params / active params) | expert-parallel all-to-all and uneven load grow with it |
| interconnect | ln(GPU-to-GPU GB/s / 600), clamped to 400..1800 (NVLink) | parallel traffic inside a server |
| sequence | ln(sequence length / 2048) | longer sequences make larger, more efficient attention and MLP kernels |

Pure functions over plain numbers: no numpy here, so `truecost estimate` stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

A100_PEAK_TFLOPS = 312.0
# The range the published runs cover; outside it a feature is clamped instead of extrapolated.
PEAK_RANGE_TFLOPS = (125.0, 2250.0)
ACTIVE_RANGE = (1e9, 4e11)
NVLINK_RANGE_GB_S = (400.0, 1800.0)
SMALL_MEMORY_GIB = 60.0

@dataclass(frozen=True)
class RunShape:
    """What the utilisation model needs to know about a training run and its hardware."""

    gpu: str
    peak16_tflops: float
    params_active: float
    params_total: float
    memory_gib: float
    interconnect_gb_s: float
    seq_len: int


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def features(shape: RunShape) -> dict[str, float]:
    """Every feature's value for this run (see the module docstring for the reasons)."""
    g = math.log(_clamp(shape.peak16_tflops, PEAK_RANGE_TFLOPS) / A100_PEAK_TFLOPS)
    s = math.log(_clamp(shape.params_active, ACTIVE_RANGE) / 1e10)
    link = shape.interconnect_gb_s or 600.0  # unknown link: no claim either way
    return {
        "intercept": 1.0,
        "hardware": g,
        "hardware_x_size": g * s,
        "small_memory": 1.0 if 0 < shape.memory_gib < SMALL_MEMORY_GIB else 0.0,
        "moe_sparsity": math.log(max(shape.params_total, shape.params_active) / shape.params_active),
        "interconnect": math.log(_clamp(link, NVLINK_RANGE_GB_S) / 600.0),
        "sequence": math.log(max(shape.seq_len, 256) / 2048.0),
    }


def log_mfu(coefficients: dict[str, float], shape: RunShape) -> float:
    """The linear predictor: sum of coefficient x feature over the coefficients given (others count 0)."""
    x = features(shape)
    return sum(value * x[name] for name, value in coefficients.items())
