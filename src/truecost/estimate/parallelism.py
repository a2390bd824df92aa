"""Can the interconnect keep up? Data-parallel traffic per step against compute per step.

The fitted utilisation comes from runs on NVLink servers joined by InfiniBand-class networks, where gradient and
weight traffic hides behind the backward pass. That holds only while a step's traffic takes no longer than its
compute. Per GPU and step, sharded data parallelism moves (ring collectives, 16-bit values, the (dp-1)/dp share):

- ZeRO-3 / FSDP: all-gather of the weights in forward and again in backward (2 x weights) plus a reduce-scatter
  of the gradients (1 x trainable);
- ZeRO-0..2: an all-reduce of the gradients (2 x trainable; ZeRO-2 reduce-scatters: 1 x trainable, but then
  all-gathers updated weights: the same 2x in total).

Inside one server that traffic runs over the GPU-to-GPU link (half its two-way figure per direction); across
servers over the network, `scale_out_gb_s` per GPU. With perfect overlap a step takes max(compute, traffic); a
job whose traffic exceeds its compute is *interconnect-bound* and runs slower than the fitted utilisation says.
Tensor parallelism all-reduces every layer's activations and is only practical over an NVLink-class link.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GPUS_PER_SERVER = 8
BYTES_16BIT = 2.0
# Llama 2 and LLaMA trained with a 4M-token global batch (arXiv 2307.09288, 2302.13971): the default batch of a
# pre-training-sized run; smaller runs take at least 1,000 optimizer steps.
DEFAULT_GLOBAL_BATCH_TOKENS = 4.0e6
MIN_STEPS = 1000


@dataclass(frozen=True)
class Communication:
    """One optimizer step of one GPU: compute seconds, data-parallel traffic seconds and which one bounds it."""

    global_batch_tokens: float
    compute_s: float
    traffic_gb: float
    bandwidth_gb_s: float
    traffic_s: float
    link: str

    @property
    def bound(self) -> str:
        return "interconnect" if self.traffic_s > self.compute_s else "compute"

    @property
    def slowdown(self) -> float:
        """Step time over compute time (1 when the traffic hides behind compute)."""
        return max(1.0, self.traffic_s / self.compute_s) if self.compute_s > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(bound=self.bound, slowdown=round(self.slowdown, 4))
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in data.items()}


def global_batch_tokens(tokens: float, micro_batch: int, seq_len: int, dp: int, given: float | None) -> float:
    """The tokens of one optimizer step: the given figure, else 4M capped so the run has >= 1,000 steps, and never
    less than one micro-batch per data-parallel rank."""
    batch = given if given is not None else min(DEFAULT_GLOBAL_BATCH_TOKENS, tokens / MIN_STEPS)
    return max(batch, float(micro_batch * seq_len * dp))


def data_parallel_traffic_bytes(params_total: float, params_trainable: float, *, zero: int, dp: int,
                                model_parallel: int) -> float:
    """Bytes one GPU sends per optimizer step for data parallelism (ring collectives, 16-bit)."""
    if dp <= 1:
        return 0.0
    weights = params_total / model_parallel * BYTES_16BIT
    grads = params_trainable / model_parallel * BYTES_16BIT
    volume = 2.0 * weights + grads if zero >= 3 else 2.0 * grads
    return volume * (dp - 1) / dp


def link_bandwidth_gb_s(gpus: int, interconnect_gb_s: float, scale_out_gb_s: float) -> float:
    """One-direction GB/s a ring collective over `gpus` gets per GPU: the in-server link, or the network once the
    ring leaves the server."""
    inside = interconnect_gb_s / 2.0
    if gpus <= GPUS_PER_SERVER or scale_out_gb_s <= 0:
        return inside
    return min(inside, scale_out_gb_s) if inside > 0 else scale_out_gb_s


def step_communication(*, flops_per_token: float, batch_tokens: float, gpus: int, peak_flops: float,
                       steady_mfu: float, traffic_bytes: float, bandwidth_gb_s: float, link: str) -> Communication:
    """Compute and traffic time of one step on one GPU."""
    compute_s = flops_per_token * batch_tokens / gpus / (peak_flops * steady_mfu)
    traffic_s = traffic_bytes / (bandwidth_gb_s * 1e9) if bandwidth_gb_s > 0 else 0.0
    return Communication(global_batch_tokens=batch_tokens, compute_s=compute_s, traffic_gb=traffic_bytes / 1e9,
                         bandwidth_gb_s=bandwidth_gb_s, traffic_s=traffic_s, link=link)
