"""Serving estimate: KV cache per token, batch that fits, roofline prefill/decode speed, GPUs, $ per 1M tokens.

Prefill is compute-bound (2 FLOPs per active weight per prompt token); decode is bandwidth-bound (every step
reads the weights once plus each sequence's KV cache). Achievable fractions of peak are named assumptions below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from truecost.errors import UserError
from truecost.estimate.architecture import Architecture
from truecost.estimate.catalogue import GPU, default_price_usd, gpu_price_label
from truecost.units import HOURS_PER_MONTH

SECONDS_PER_DAY = 86400.0

# (value, reason) for every serving assumption; each is a keyword argument of estimate_serving.
SERVE_ASSUMPTIONS: dict[str, tuple[float, str]] = {
    "bandwidth_efficiency": (0.75, "decode kernels reach ~70-80% of datasheet HBM bandwidth (vLLM/TensorRT-LLM "
                                   "profiles on A100/H100); lower on AMD"),
    "prefill_mfu": (0.50, "large prefill matmuls reach ~50% of dense peak in serving engines"),
    "memory_headroom": (0.90, "vLLM's default gpu_memory_utilization=0.9: the rest is context and scratch"),
    "peak_to_average": (2.0, "user-facing traffic peaks at about twice its daily average (diurnal cycle)"),
    "redundant_replicas": (1.0, "N+1: one replica more than the peak needs, so a failure or a rolling update "
                                "does not drop traffic"),
}

Precision = Literal["bf16", "fp16", "fp8", "int4"]
_WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.5 + 0.03}  # int4: AWQ/GPTQ scales per group
_COMPUTE_PRECISION = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int4": "fp16"}


def kv_cache_bytes_per_token(arch: Architecture, context: int, bytes_per_value: float = 2.0) -> float:
    """Average KV-cache bytes per token of a sequence of `context` tokens (sliding-window layers stop growing)."""
    full_layers = arch.num_layers - arch.sliding_window_layers
    per_token = full_layers * arch.kv_dim_per_layer * bytes_per_value
    if arch.sliding_window_layers and arch.sliding_window:
        # the newest token completes the window, so window-1 past tokens stay cached (as transformers does)
        kept = min(context, arch.sliding_window - 1) / max(context, 1)
        per_token += arch.sliding_window_layers * arch.kv_dim_per_layer * bytes_per_value * kept
    return per_token


@dataclass
class ServingEstimate:
    """How many GPUs a traffic level needs and what a token costs on them."""

    model: str
    gpu: str
    precision: str
    tensor_parallel: int
    replicas: int
    gpus: int
    weights_gib: float
    kv_cache_bytes_per_token: float
    kv_cache_gib_per_sequence: float
    max_batch: int
    batch: int
    prefill_tokens_per_s: float
    decode_tokens_per_s_per_sequence: float
    decode_tokens_per_s: float
    latency_ms: float
    requests_per_s_per_replica: float
    usd_per_gpu_hour: float
    usd_per_month: float
    usd_per_1m_tokens: float
    usd_per_1m_output_tokens: float
    usd_per_request: float
    api: dict[str, Any] | None = None
    capacity: dict[str, Any] = field(default_factory=dict)
    assumptions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _decode_step_seconds(arch: Architecture, gpu: GPU, tp: int, batch: int, context: int, weight_bytes: float,
                         compute_precision: str, bandwidth_efficiency: float, prefill_mfu: float,
                         kv_bytes: float = 2.0) -> float:
    # One sequence reads the active weights; each further sequence in an MoE batch wakes other experts.
    extra = 0.0
    if arch.num_experts and arch.experts_per_token:
        share = arch.experts_per_token / arch.num_experts
        extra = 1.0 - (1.0 - share) ** (batch - 1)
    weights_read = arch.params_active + (arch.params_total - arch.params_active) * extra
    bytes_read = weights_read * weight_bytes + batch * context * kv_cache_bytes_per_token(arch, context, kv_bytes)
    memory_s = bytes_read / (gpu.bandwidth_gb_s * 1e9 * tp * bandwidth_efficiency)
    flops = batch * arch.forward_flops_per_token(context, causal=True)
    compute_s = flops / (gpu.peak_flops(compute_precision) * tp * prefill_mfu)
    return max(memory_s, compute_s)


def _replicas(requests_per_day: float, replica_rps: float, a: dict[str, float]) -> tuple[int, dict[str, Any]]:
    """Replicas for the peak rate plus the redundant ones, and the reasoning as numbers."""
    average_rps = requests_per_day / SECONDS_PER_DAY
    peak_rps = average_rps * a["peak_to_average"]
    for_peak = max(1, math.ceil(peak_rps / replica_rps)) if requests_per_day > 0 else 1
    spare = max(0, int(round(a["redundant_replicas"])))
    why = (f"{average_rps:.2f} req/s on average x {a['peak_to_average']:g} peak-to-average = {peak_rps:.2f} req/s at "
           f"peak; one replica serves {replica_rps:.2f} req/s -> {for_peak} for the peak + {spare} redundant")
    return for_peak + spare, {"average_rps": average_rps, "peak_rps": peak_rps, "replica_rps": replica_rps,
                              "replicas_for_peak": for_peak, "redundant_replicas": spare,
                              "peak_utilisation": peak_rps / (for_peak * replica_rps), "why": why}


def static_batch_output_tokens_per_s(arch: Architecture, gpu: GPU, *, tensor_parallel: int, batch: int,
                                     prompt_tokens: int, output_tokens: int, precision: Precision = "bf16",
                                     kv_bytes: float = 2.0, **overrides: float) -> float:
    """Output tokens per second per GPU of one static batch: all prompts prefilled, then `output_tokens` decode
    steps over a growing context (the mean context is used). What benchmark tables of offline throughput report."""
    a = {k: float(overrides.get(k, v[0])) for k, v in SERVE_ASSUMPTIONS.items()}
    compute = _compute_precision(precision, gpu)
    prefill_s = _prefill_seconds(arch, gpu, tensor_parallel, batch, prompt_tokens, compute, a["prefill_mfu"])
    mean_context = prompt_tokens + output_tokens // 2
    step_s = _decode_step_seconds(arch, gpu, tensor_parallel, batch, mean_context, _WEIGHT_BYTES[precision], compute,
                                  a["bandwidth_efficiency"], a["prefill_mfu"], kv_bytes)
    return batch * output_tokens / (prefill_s + output_tokens * step_s) / tensor_parallel


def first_token_ms(arch: Architecture, gpu: GPU, *, tensor_parallel: int, prompt_tokens: int,
                   precision: Precision = "bf16", **overrides: float) -> float:
    """Time to the first token of one request alone: its prefill, bounded below by one read of the weights."""
    a = {k: float(overrides.get(k, v[0])) for k, v in SERVE_ASSUMPTIONS.items()}
    compute = _compute_precision(precision, gpu)
    prefill_s = _prefill_seconds(arch, gpu, tensor_parallel, 1, prompt_tokens, compute, a["prefill_mfu"])
    weights_s = arch.params_active * _WEIGHT_BYTES[precision] / (
        gpu.bandwidth_gb_s * 1e9 * tensor_parallel * a["bandwidth_efficiency"])
    return max(prefill_s, weights_s) * 1000.0


def _compute_precision(precision: str, gpu: GPU) -> str:
    compute = _COMPUTE_PRECISION[precision]
    if compute == "bf16" and "bf16" not in gpu.peak_tflops:
        compute = "fp16"  # pre-Ampere GPUs serve the same 16-bit weights in fp16
    gpu.peak_flops(compute)
    return compute


def _prefill_seconds(arch: Architecture, gpu: GPU, tp: int, batch: int, prompt_tokens: int, compute: str,
                     prefill_mfu: float) -> float:
    return batch * prompt_tokens * arch.forward_flops_per_token(prompt_tokens, causal=True) / (
        gpu.peak_flops(compute) * tp * prefill_mfu)


def _check_finite(**values: float | None) -> None:
    """A NaN, infinite or negative figure would print as null or a negative dollar amount: refuse it by name."""
    for name, value in values.items():
        if value is not None and (not math.isfinite(value) or value < 0 or (name == "latency_p95_ms" and value == 0)):
            raise UserError(f"{name.replace('_', '-')} must be a positive finite number, got {value}")


def estimate_serving(arch: Architecture, gpu: GPU, *, requests_per_day: float, prompt_tokens: int,
                     output_tokens: int, precision: Precision = "bf16", latency_p95_ms: float | None = None,
                     pricing: str = "on-demand", price_per_gpu_hour: float | None = None,
                     api_usd_per_request: float | None = None, api_model: str | None = None,
                     tensor_parallel: int | None = None, **overrides: float) -> ServingEstimate:
    """Size a deployment for `requests_per_day` requests of `prompt_tokens` in and `output_tokens` out."""
    unknown = set(overrides) - set(SERVE_ASSUMPTIONS)
    if unknown:
        raise UserError(f"unknown serving assumption(s) {sorted(unknown)}; choose from {sorted(SERVE_ASSUMPTIONS)}")
    a = {k: float(overrides.get(k, v[0])) for k, v in SERVE_ASSUMPTIONS.items()}
    if precision not in _WEIGHT_BYTES:
        raise UserError(f"unknown serving precision {precision!r}; choose one of: {', '.join(_WEIGHT_BYTES)}")
    if requests_per_day < 0 or prompt_tokens < 0 or output_tokens < 1:
        raise UserError("requests per day and prompt tokens must be non-negative and output tokens at least 1")
    _check_finite(requests_per_day=requests_per_day, price_per_gpu_hour=price_per_gpu_hour,
                  api_usd_per_request=api_usd_per_request, latency_p95_ms=latency_p95_ms)
    if tensor_parallel and tensor_parallel > arch.num_heads:  # tensor parallelism splits the attention heads
        raise UserError(f"--tp {tensor_parallel} is more than {arch.name}'s {arch.num_heads} attention heads")
    compute_precision = _compute_precision(precision, gpu)
    weight_bytes = _WEIGHT_BYTES[precision]
    context = prompt_tokens + output_tokens
    weights = arch.params_total * weight_bytes
    kv_per_token = kv_cache_bytes_per_token(arch, context)
    kv_per_sequence = kv_per_token * context
    usable = gpu.memory_gib * 1024**3 * a["memory_headroom"]
    candidates = [tensor_parallel] if tensor_parallel else [1, 2, 4, 8, 16, 32, 64]
    tp = next((t for t in candidates if usable * t - weights >= kv_per_sequence), None)
    if tp is None:
        raise UserError(f"{arch.name} in {precision} does not fit on {candidates[-1]}x {gpu.name} with room for "
                        "one sequence; use a GPU with more memory, a lower precision or a larger --tp")
    max_batch = max(1, int((usable * tp - weights) // kv_per_sequence))
    prefill_s = _prefill_seconds(arch, gpu, tp, 1, prompt_tokens, compute_precision, a["prefill_mfu"])

    def step(batch: int) -> float:
        return _decode_step_seconds(arch, gpu, tp, batch, context, weight_bytes, compute_precision,
                                    a["bandwidth_efficiency"], a["prefill_mfu"])

    def latency_s(batch: int) -> float:
        return prefill_s + output_tokens * step(batch)

    batch = max_batch
    if latency_p95_ms is not None:
        while batch > 1 and latency_s(batch) * 1000.0 > latency_p95_ms:
            batch = max(1, batch // 2 if batch > 16 else batch - 1)
        if latency_s(batch) * 1000.0 > latency_p95_ms:
            raise UserError(f"even one request at a time takes {latency_s(1) * 1000:.0f} ms on {tp}x {gpu.name}, "
                            f"above --latency-p95-ms {latency_p95_ms:.0f}; try a faster GPU or lower precision")
    # GPU time per request: its prefill plus its share of the batched decode steps
    seconds_per_request = prefill_s + output_tokens * step(batch) / batch
    replica_rps = 1.0 / seconds_per_request
    replicas, capacity = _replicas(requests_per_day, replica_rps, a)
    gpus = replicas * tp
    price = price_per_gpu_hour or default_price_usd(gpu, pricing)
    usd_month = gpus * price * HOURS_PER_MONTH
    requests_month = requests_per_day * HOURS_PER_MONTH / 24.0
    tokens_month = requests_month * context
    api = None
    if api_usd_per_request is not None:
        api_month = api_usd_per_request * requests_month
        api = {"model": api_model, "usd_per_request": api_usd_per_request, "usd_per_month": api_month,
               "self_hosting_vs_api": usd_month / api_month if api_month else None}
    return ServingEstimate(
        model=arch.name, gpu=gpu.name, precision=precision, tensor_parallel=tp, replicas=replicas, gpus=gpus,
        weights_gib=weights / 1024**3, kv_cache_bytes_per_token=kv_per_token,
        kv_cache_gib_per_sequence=kv_per_sequence / 1024**3, max_batch=max_batch, batch=batch,
        prefill_tokens_per_s=prompt_tokens / prefill_s if prefill_s else 0.0,
        decode_tokens_per_s_per_sequence=1.0 / step(batch), decode_tokens_per_s=batch / step(batch),
        latency_ms=latency_s(batch) * 1000.0, requests_per_s_per_replica=replica_rps, usd_per_gpu_hour=price,
        usd_per_month=usd_month, usd_per_1m_tokens=usd_month / tokens_month * 1e6 if tokens_month else 0.0,
        usd_per_1m_output_tokens=usd_month / (requests_month * output_tokens) * 1e6 if requests_month else 0.0,
        usd_per_request=usd_month / requests_month if requests_month else 0.0, api=api, capacity=capacity,
        assumptions={**{k: {"value": a[k], "reason": SERVE_ASSUMPTIONS[k][1]} for k in a},
                     "latency": "modelled mean latency at the chosen batch, compared with the p95 target",
                     "usd_per_gpu_hour": gpu_price_label(gpu, pricing, price_per_gpu_hour)})
