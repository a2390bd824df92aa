"""Training estimate: FLOPs, memory per GPU, GPU-hours, wall time, dollars, energy, CO2 and levers.

`estimate_training(TrainingSpec(...))` is the one entry point; the CLI and the train part's pre-flight check call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from truecost.config import describe_validation_error
from truecost.errors import UserError
from truecost.estimate.architecture import Architecture, architecture_from_params
from truecost.estimate.calibration import Priors, imputed_gpus, load_priors
from truecost.estimate.catalogue import (
    GPU,
    Pricing,
    default_price_usd,
    find_gpu,
    find_model,
    gpu_price_label,
    with_memory,
)
from truecost.estimate.memory import CUDA_CONTEXT_GIB, GIB, MemoryBreakdown, training_memory
from truecost.estimate.parallelism import (
    Communication,
    data_parallel_traffic_bytes,
    global_batch_tokens,
    link_bandwidth_gb_s,
    step_communication,
)
from truecost.estimate.pricing import ComputePrices
from truecost.estimate.settings import DEFAULT_DUPLICATE_SHARE
from truecost.estimate.utilisation import RunShape
from truecost.units import parse_quantity

Quantiles = dict[str, float]


class TrainingSpec(BaseModel):
    """What the user plans to train, on what, and how. Give one of `model`, `architecture` or `params`."""

    # allow_inf_nan=False: an infinite price or PUE would otherwise print its dollars as null.
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=(),
                              allow_inf_nan=False)

    model: str | None = None
    architecture: Architecture | None = None
    params: float | None = Field(None, ge=1)
    active_params: float | None = Field(None, ge=1)
    tokens: float = Field(..., gt=0)
    gpu: str = "H100 SXM"
    gpus: int = Field(8, ge=0, description="0 means: not known (assume a 30-day run)")
    precision: Literal["bf16", "fp16", "fp8", "tf32", "fp32"] = "bf16"
    method: Literal["full", "lora", "qlora"] = "full"
    lora_rank: int = Field(16, ge=1)
    seq_len: int = Field(4096, ge=1)
    micro_batch: int = Field(1, ge=1)
    global_batch_tokens: float | None = Field(None, gt=0, description="tokens per optimizer step (default: 4M, "
                                              "or fewer so the run has at least 1,000 steps)")
    zero: int = Field(3, ge=0, le=3)
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    recompute: Literal["none", "selective", "full"] = "selective"
    flash_attention: bool = True
    pricing: Pricing = "on-demand"
    price_per_gpu_hour: float | None = Field(None, gt=0)
    device_memory_gib: float | None = Field(None, gt=0)
    mfu: float | None = Field(None, gt=0, le=1, description="override the fitted utilisation")
    power_utilisation: float = Field(0.7, gt=0, le=1.2, description="average draw as a share of TDP")
    pue: float = Field(ComputePrices.pue, ge=1.0)
    grid_kg_co2_per_kwh: float = Field(ComputePrices.grid_kg_co2_per_kwh, ge=0)
    gpu_overrides: list[dict[str, Any]] = Field(default_factory=list)
    duplicate_share: float = Field(DEFAULT_DUPLICATE_SHARE, ge=0, lt=1,
                                   description="share of training tokens that are duplicates (de-duplication lever)")

    @field_validator("params", "active_params", "tokens", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_quantity(value, what="quantity")
        if isinstance(value, int | float) and value < 0:
            raise ValueError(f"must be positive, got {value}")
        return value

    @model_validator(mode="after")
    def _one_model(self) -> TrainingSpec:
        if self.model is None and self.architecture is None and self.params is None:
            raise ValueError("give a model name, an architecture or a parameter count")
        if self.params is not None and self.active_params is not None and self.active_params > self.params:
            raise ValueError(f"active parameters ({self.active_params:g}) cannot exceed the total ({self.params:g})")
        return self


def make_spec(**fields: Any) -> TrainingSpec:
    """A TrainingSpec from keyword fields; a bad value becomes one UserError line naming the field."""
    try:
        return TrainingSpec(**fields)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, "training spec")) from exc


@dataclass
class Lever:
    """One change to the plan and the dollars it would save at p50, with the basis of that figure: `sourced` (the
    calibrated estimate re-run on the dated catalogue) or `assumed` (it rests on a named default); a saving a run
    measured is `measured`. Only measured savings may be summed across runs."""

    name: str
    saving_usd: float
    note: str
    basis: str = "sourced"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "saving_usd": round(self.saving_usd, 2), "note": self.note, "basis": self.basis}


@dataclass
class TrainingEstimate:
    """The answer: every figure a team needs before it spends, with p10/p50/p90 where uncertain."""

    model: str
    gpu: str
    gpus: int
    params_total: int
    params_active: int
    params_trainable: int
    tokens: float
    flops: float
    mfu: float
    goodput: float
    usd_per_gpu_hour: float
    gpu_hours: Quantiles
    wall_hours: Quantiles
    cost_usd: Quantiles
    energy_kwh: Quantiles
    co2_kg: Quantiles
    memory: MemoryBreakdown
    device_memory_gib: float
    fits_in_memory: bool
    levers: list[Lever] = field(default_factory=list)
    assumptions: dict[str, Any] = field(default_factory=dict)
    interconnect: str = ""
    communication: Communication | None = None

    @property
    def memory_per_gpu_gib(self) -> dict[str, float]:
        return self.memory.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """The `--json` document (field names are a public contract)."""
        return {
            "model": self.model, "gpu": self.gpu, "gpus": self.gpus,
            "params_total": self.params_total, "params_active": self.params_active,
            "params_trainable": self.params_trainable, "tokens": self.tokens, "flops": self.flops,
            "mfu": round(self.mfu, 4), "goodput": round(self.goodput, 4), "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "gpu_hours": self.gpu_hours, "wall_hours": self.wall_hours, "cost_usd": self.cost_usd,
            "energy_kwh": self.energy_kwh, "co2_kg": self.co2_kg,
            "memory_per_gpu_gib": self.memory_per_gpu_gib, "device_memory_gib": self.device_memory_gib,
            "fits_in_memory": self.fits_in_memory, "levers": [lever.to_dict() for lever in self.levers],
            "assumptions": self.assumptions, "interconnect": self.interconnect,
            "communication": self.communication.to_dict() if self.communication else None,
        }


def resolve(spec: TrainingSpec) -> tuple[Architecture, GPU]:
    """The architecture and GPU a spec names."""
    if spec.architecture is not None:
        arch = spec.architecture
    elif spec.model is not None:
        arch = find_model(spec.model).architecture
    else:
        assert spec.params is not None
        arch = architecture_from_params(spec.params, spec.active_params)
    gpu = with_memory(find_gpu(spec.gpu, spec.gpu_overrides), spec.device_memory_gib)
    return arch, gpu


def model_flops(arch: Architecture, spec: TrainingSpec) -> float:
    """Model FLOPs of the whole run (no recomputation): 6 per weight per token for full training plus attention;
    LoRA/QLoRA skip the weight-gradient matmuls of the frozen base (4 instead of 6)."""
    if arch.model_type == "approximate":
        per_token = 6.0 * arch.params_active + 3.0 * arch.attention_flops_per_token(spec.seq_len)
    else:
        per_token = arch.training_flops_per_token(spec.seq_len)
    if spec.method != "full":
        per_token *= 2.0 / 3.0
        per_token += 6.0 * arch.lora_params(spec.lora_rank)
    return per_token * spec.tokens


def run_shape(spec: TrainingSpec, arch: Architecture, gpu: GPU) -> RunShape:
    """What the utilisation model sees of this plan."""
    return RunShape(gpu=gpu.name, peak16_tflops=gpu.peak16_tflops, params_active=arch.params_active,
                    params_total=arch.params_total, memory_gib=gpu.memory_gib,
                    interconnect_gb_s=gpu.interconnect_gb_s, seq_len=spec.seq_len)


def _speed_factor(gpu: GPU, precision: str, priors: Priors) -> float:
    """Throughput relative to 16-bit training on this GPU."""
    gpu.peak_flops(precision)  # raises a UserError if unsupported
    if precision == "fp8":
        return priors.fp8_speedup
    if precision in ("fp32", "tf32"):
        return gpu.peak_tflops[precision] / gpu.peak16_tflops
    return 1.0


def _quantiles(p50: float, band: tuple[float, float]) -> Quantiles:
    return {"p10": p50 * band[0], "p50": p50, "p90": p50 * band[1]}


def _parallel_layout(spec: TrainingSpec, gpus: int) -> int:
    model_parallel = spec.tp * spec.pp
    if gpus % model_parallel:
        raise UserError(f"--gpus {gpus} is not a multiple of tp*pp = {model_parallel}")
    return gpus // model_parallel


def _utilisation(spec: TrainingSpec, arch: Architecture, gpu: GPU, gpus: int, priors: Priors
                 ) -> tuple[float, float, float]:
    """(end-to-end MFU, goodput, steady MFU): the given override, the CPU constant, or the fitted model."""
    if spec.mfu is not None:
        return spec.mfu, 1.0, spec.mfu
    if gpu.vendor == "cpu":
        return priors.cpu_mfu, 1.0, priors.cpu_mfu
    shape = run_shape(spec, arch, gpu)
    return priors.mfu(shape, gpus), priors.goodput(gpus), priors.steady_mfu(shape)


def _communication(spec: TrainingSpec, arch: Architecture, gpu: GPU, gpus: int, steady_mfu: float,
                   flops: float, speed: float) -> Communication | None:
    """Data-parallel traffic against compute for one step (None on a CPU or a single device). With tp and pp left
    at 1, the layout is the one a team would pick: tensor parallelism up to 8 inside an NVLink-class server when it
    lowers the traffic. MoE experts are taken as sharded by expert parallelism, so only the active-size part of the
    model is replicated across data-parallel ranks."""
    if gpu.vendor == "cpu" or gpus <= 1:
        return None
    replicated = arch.params_active if arch.num_experts else arch.params_total
    trainable = replicated if spec.method == "full" else arch.lora_params(spec.lora_rank)
    given = spec.tp * spec.pp
    layouts = [given] if given > 1 or not gpu.nvlink_class else [m for m in (1, 2, 4, 8) if gpus % m == 0]
    best: Communication | None = None
    for model_parallel in layouts:
        dp = gpus // model_parallel
        batch = global_batch_tokens(spec.tokens, spec.micro_batch, spec.seq_len, dp, spec.global_batch_tokens)
        traffic = data_parallel_traffic_bytes(replicated, trainable, zero=spec.zero, dp=dp,
                                              model_parallel=model_parallel)
        comm = step_communication(
            flops_per_token=flops / spec.tokens, batch_tokens=batch, gpus=gpus,
            peak_flops=gpu.peak16_tflops * 1e12 * speed, steady_mfu=steady_mfu, traffic_bytes=traffic,
            bandwidth_gb_s=link_bandwidth_gb_s(gpus, gpu.interconnect_gb_s, gpu.scale_out_gb_s),
            link=f"{gpu.interconnect} {gpu.interconnect_gb_s:g} GB/s in a server, {gpu.scale_out_gb_s:g} GB/s per "
                 f"GPU between servers; model parallel {model_parallel}")
        if best is None or comm.traffic_s < best.traffic_s:
            best = comm
    return best


def _assumptions(spec: TrainingSpec, dp: int, priors: Priors) -> dict[str, Any]:
    calibrated = f"; calibrated on your runs ({priors.calibration.get('runs', 0)} read)" if priors.offsets else ""
    return {"pricing": spec.pricing if spec.price_per_gpu_hour is None else "given",
            "precision": spec.precision, "method": spec.method, "seq_len": spec.seq_len,
            "micro_batch": spec.micro_batch, "zero": spec.zero, "tp": spec.tp, "pp": spec.pp,
            "data_parallel": dp, "recompute": spec.recompute, "lora_rank": spec.lora_rank,
            "power_utilisation": spec.power_utilisation, "pue": spec.pue,
            "grid_kg_co2_per_kwh": spec.grid_kg_co2_per_kwh,
            "interval": "p10-p90 from the organisation-grouped cross-validation error on published runs "
                        f"(sigma_log={priors.sigma_log:.3f}){calibrated}"}


def _memory(spec: TrainingSpec, arch: Architecture, gpu: GPU, dp: int) -> MemoryBreakdown:
    return training_memory(arch, method=spec.method, precision=spec.precision, micro_batch=spec.micro_batch,
                           seq_len=spec.seq_len, dp=dp, zero=spec.zero, tp=spec.tp, pp=spec.pp,
                           recompute=spec.recompute, lora_rank=spec.lora_rank, flash_attention=spec.flash_attention,
                           context_gib=0.0 if gpu.vendor == "cpu" else CUDA_CONTEXT_GIB)


def estimate_training(spec: TrainingSpec, priors: Priors | None = None, with_levers: bool = True
                      ) -> TrainingEstimate:
    """Estimate one training run; p50 from the fitted utilisation (slowed when the interconnect cannot keep up),
    p10/p90 from the model's organisation-grouped cross-validation error."""
    priors = priors or load_priors()
    arch, gpu = resolve(spec)
    flops = model_flops(arch, spec)
    gpus = spec.gpus or imputed_gpus(flops, gpu.peak16_tflops)
    dp = _parallel_layout(spec, gpus)
    mfu, goodput, steady = _utilisation(spec, arch, gpu, gpus, priors)
    speed = _speed_factor(gpu, spec.precision, priors)
    comm = _communication(spec, arch, gpu, gpus, steady, flops, speed)
    slowdown = priors.recompute_time_factor[spec.recompute] * (comm.slowdown if comm else 1.0)
    if spec.method == "qlora":
        slowdown *= priors.qlora_slowdown
    gpu_hours = _quantiles(flops / (gpu.peak16_tflops * 1e12 * mfu * speed) * slowdown / 3600.0, priors.band())
    price = spec.price_per_gpu_hour or default_price_usd(gpu, spec.pricing)
    memory = _memory(spec, arch, gpu, dp)
    energy = {q: h * gpu.tdp_w * spec.power_utilisation / 1000.0 * spec.pue for q, h in gpu_hours.items()}
    estimate = TrainingEstimate(
        model=arch.name, gpu=gpu.name, gpus=gpus, params_total=arch.params_total, params_active=arch.params_active,
        params_trainable=arch.params_total if spec.method == "full" else arch.lora_params(spec.lora_rank),
        tokens=spec.tokens, flops=flops, mfu=mfu, goodput=goodput, usd_per_gpu_hour=price, gpu_hours=gpu_hours,
        wall_hours={q: h / gpus for q, h in gpu_hours.items()}, cost_usd={q: h * price for q, h in gpu_hours.items()},
        energy_kwh=energy, co2_kg={q: e * spec.grid_kg_co2_per_kwh for q, e in energy.items()}, memory=memory,
        device_memory_gib=gpu.memory_gib, fits_in_memory=memory.total <= gpu.memory_gib or gpu.memory_gib == 0,
        assumptions={**_assumptions(spec, dp, priors),
                     "usd_per_gpu_hour": gpu_price_label(gpu, spec.pricing, spec.price_per_gpu_hour)},
        interconnect=gpu.interconnect, communication=comm)
    if comm is not None and comm.bound == "interconnect":
        estimate.assumptions["interconnect"] = (
            f"interconnect-bound: {comm.traffic_gb:.1f} GB of data-parallel traffic per step take "
            f"{comm.traffic_s:.2f} s over {comm.link}, compute {comm.compute_s:.2f} s; GPU-hours x{comm.slowdown:.2f}")
    if gpu.memory_gib == 0:
        estimate.fits_in_memory = False
        estimate.assumptions["memory"] = "device memory unknown: pass device_memory_gib"
    if with_levers:
        from truecost.estimate.levers import training_levers

        estimate.levers = training_levers(spec, estimate, priors)
    return estimate


def memory_gib_needed(spec: TrainingSpec) -> float:
    """Total GiB per GPU the spec needs (shortcut for pre-flight checks)."""
    return estimate_training(spec, with_levers=False).memory.total


def cost_per_token_usd(spec: TrainingSpec) -> float:
    """p50 dollars per training token of this plan."""
    est = estimate_training(spec, with_levers=False)
    return est.cost_usd["p50"] / spec.tokens


__all__ = ["GIB", "Lever", "TrainingEstimate", "TrainingSpec", "cost_per_token_usd", "estimate_training",
           "make_spec", "memory_gib_needed", "model_flops", "resolve", "run_shape"]
