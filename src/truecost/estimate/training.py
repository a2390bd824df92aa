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
from truecost.estimate.calibration import Priors, load_priors
from truecost.estimate.catalogue import GPU, default_price_usd, find_gpu, find_model, with_memory
from truecost.estimate.memory import CUDA_CONTEXT_GIB, GIB, MemoryBreakdown, training_memory
from truecost.units import parse_quantity

Quantiles = dict[str, float]


class TrainingSpec(BaseModel):
    """What the user plans to train, on what, and how. Give one of `model`, `architecture` or `params`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    model: str | None = None
    architecture: Architecture | None = None
    params: float | None = Field(None, gt=0)
    active_params: float | None = Field(None, gt=0)
    tokens: float = Field(..., gt=0)
    gpu: str = "H100 SXM"
    gpus: int = Field(8, ge=0, description="0 means: not known (assume a 30-day run)")
    precision: Literal["bf16", "fp16", "fp8", "fp32"] = "bf16"
    method: Literal["full", "lora", "qlora"] = "full"
    lora_rank: int = Field(16, ge=1)
    seq_len: int = Field(4096, ge=1)
    micro_batch: int = Field(1, ge=1)
    zero: int = Field(3, ge=0, le=3)
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    recompute: Literal["none", "selective", "full"] = "selective"
    flash_attention: bool = True
    pricing: Literal["on-demand", "spot", "reserved"] = "on-demand"
    price_per_gpu_hour: float | None = Field(None, gt=0)
    device_memory_gib: float | None = Field(None, gt=0)
    mfu: float | None = Field(None, gt=0, le=1, description="override the fitted utilisation")
    power_utilisation: float = Field(0.7, gt=0, le=1.2, description="average draw as a share of TDP")
    pue: float = Field(1.2, ge=1.0)
    grid_kg_co2_per_kwh: float = Field(0.37, ge=0)
    gpu_overrides: list[dict[str, Any]] = Field(default_factory=list)

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
            "assumptions": self.assumptions,
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


def _peak16(gpu: GPU) -> float:
    return gpu.peak_tflops.get("bf16") or gpu.peak_tflops.get("fp16") or gpu.peak_tflops["fp32"]


def _speed_factor(gpu: GPU, precision: str, priors: Priors) -> float:
    """Throughput relative to 16-bit training on this GPU."""
    gpu.peak_flops(precision)  # raises a UserError if unsupported
    if precision == "fp8":
        return priors.fp8_speedup
    if precision == "fp32":
        return gpu.peak_tflops["fp32"] / _peak16(gpu)
    return 1.0


def _quantiles(p50: float, band: tuple[float, float]) -> Quantiles:
    return {"p10": p50 * band[0], "p50": p50, "p90": p50 * band[1]}


def _parallel_layout(spec: TrainingSpec, gpus: int) -> int:
    model_parallel = spec.tp * spec.pp
    if gpus % model_parallel:
        raise UserError(f"--gpus {gpus} is not a multiple of tp*pp = {model_parallel}")
    return gpus // model_parallel


def estimate_training(spec: TrainingSpec, priors: Priors | None = None, with_levers: bool = True
                      ) -> TrainingEstimate:
    """Estimate one training run; p50 from the fitted utilisation, p10/p90 from its leave-one-out error."""
    priors = priors or load_priors()
    arch, gpu = resolve(spec)
    flops = model_flops(arch, spec)
    peak16 = _peak16(gpu)
    gpus = spec.gpus or _imputed(flops, peak16)
    dp = _parallel_layout(spec, gpus)
    if spec.mfu is not None:
        mfu, goodput = spec.mfu, 1.0
    elif gpu.vendor == "cpu":
        mfu, goodput = priors.cpu_mfu, 1.0
    else:
        goodput = priors.goodput(gpus)
        mfu = priors.mfu(peak16, arch.params_active, gpus)
    seconds_per_flop = 1.0 / (peak16 * 1e12 * mfu * _speed_factor(gpu, spec.precision, priors))
    slowdown = priors.recompute_time_factor[spec.recompute]
    if spec.method == "qlora":
        slowdown *= priors.qlora_slowdown
    gpu_hours_p50 = flops * seconds_per_flop * slowdown / 3600.0
    band = priors.band()
    price = spec.price_per_gpu_hour or default_price_usd(gpu, spec.pricing)
    memory = training_memory(arch, method=spec.method, precision=spec.precision, micro_batch=spec.micro_batch,
                             seq_len=spec.seq_len, dp=dp, zero=spec.zero, tp=spec.tp, pp=spec.pp,
                             recompute=spec.recompute, lora_rank=spec.lora_rank,
                             flash_attention=spec.flash_attention,
                             context_gib=0.0 if gpu.vendor == "cpu" else CUDA_CONTEXT_GIB)
    gpu_hours = _quantiles(gpu_hours_p50, band)
    energy = {q: h * gpu.tdp_w * spec.power_utilisation / 1000.0 * spec.pue for q, h in gpu_hours.items()}
    trainable = arch.params_total if spec.method == "full" else arch.lora_params(spec.lora_rank)
    estimate = TrainingEstimate(
        model=arch.name, gpu=gpu.name, gpus=gpus, params_total=arch.params_total, params_active=arch.params_active,
        params_trainable=trainable, tokens=spec.tokens, flops=flops, mfu=mfu, goodput=goodput,
        usd_per_gpu_hour=price, gpu_hours=gpu_hours, wall_hours={q: h / gpus for q, h in gpu_hours.items()},
        cost_usd={q: h * price for q, h in gpu_hours.items()}, energy_kwh=energy,
        co2_kg={q: e * spec.grid_kg_co2_per_kwh for q, e in energy.items()}, memory=memory,
        device_memory_gib=gpu.memory_gib, fits_in_memory=memory.total <= gpu.memory_gib or gpu.memory_gib == 0,
        assumptions={"pricing": spec.pricing if spec.price_per_gpu_hour is None else "given",
                     "precision": spec.precision, "method": spec.method, "seq_len": spec.seq_len,
                     "micro_batch": spec.micro_batch, "zero": spec.zero, "tp": spec.tp, "pp": spec.pp,
                     "data_parallel": dp, "recompute": spec.recompute, "lora_rank": spec.lora_rank,
                     "power_utilisation": spec.power_utilisation, "pue": spec.pue,
                     "grid_kg_co2_per_kwh": spec.grid_kg_co2_per_kwh, "interval": "p10-p90 from leave-one-out "
                     f"error on published runs (sigma_log={priors.sigma_log:.3f})"})
    if gpu.memory_gib == 0:
        estimate.fits_in_memory = False
        estimate.assumptions["memory"] = "device memory unknown: pass device_memory_gib"
    if with_levers:
        from truecost.estimate.levers import training_levers

        estimate.levers = training_levers(spec, estimate, priors)
    return estimate


def _imputed(flops: float, peak_tflops: float) -> int:
    from truecost.estimate.calibration import imputed_gpus

    return imputed_gpus(flops, peak_tflops)


def memory_gib_needed(spec: TrainingSpec) -> float:
    """Total GiB per GPU the spec needs (shortcut for pre-flight checks)."""
    return estimate_training(spec, with_levers=False).memory.total


def cost_per_token_usd(spec: TrainingSpec) -> float:
    """p50 dollars per training token of this plan."""
    est = estimate_training(spec, with_levers=False)
    return est.cost_usd["p50"] / spec.tokens


__all__ = ["GIB", "Lever", "TrainingEstimate", "TrainingSpec", "cost_per_token_usd", "estimate_training",
           "make_spec", "memory_gib_needed", "model_flops", "resolve"]
