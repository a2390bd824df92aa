"""Pre-flight: ask the estimate module what this exact run needs before spending anything.

The estimate is the only place that turns a run into memory, GPU-hours and dollars; this module only describes
the run to it, decides on gradient checkpointing (on when that alone makes it fit), and words the refusal.
On a CPU the host's RAM plays the part of device memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from truecost.errors import UserError
from truecost.train.config import TrainConfig
from truecost.train.metering import host_memory_gib
from truecost.train.model import architecture_dict

RECOMPUTE = {False: "none", True: "full"}  # HF gradient checkpointing recomputes whole layers


@dataclass
class Preflight:
    """The estimate for one run and what it means: fits or not, with checkpointing or not, and why."""

    fits: bool
    recompute: bool
    memory_gib: float
    device_memory_gib: float
    cost_usd: float
    gpu_hours: float
    wall_hours: float
    gpu: str
    levers: list[str] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)
    estimate: Any = None  # the estimate module's TrainingEstimate

    def refusal(self) -> str:
        """One line: why the run cannot start and what would make it fit."""
        levers = "; ".join(self.levers[:4]) or "a smaller model (model.architecture) or more memory"
        where = "this machine" if self.gpu == "cpu" else f"one {self.gpu}"
        return (f"pre-flight: this run needs ~{self.memory_gib:.2f} GiB per device but {where} has "
                f"{self.device_memory_gib:.2f} GiB, even with gradient checkpointing; changes that fit: {levers}")

    @property
    def summary(self) -> dict[str, Any]:
        """The figures the result, the ledger and `--json` carry."""
        return {"cost_usd": self.cost_usd, "memory_gib": self.memory_gib, "gpu_hours": self.gpu_hours,
                "wall_hours": self.wall_hours,
                "device_memory_gib": self.device_memory_gib, "fits": self.fits, "recompute": self.recompute,
                "gpu": self.gpu, "breakdown": self.breakdown}

    def compare(self, *, cost_usd: float, wall_hours: float, device_hours: float,
                memory_gib: float) -> dict[str, dict[str, float | None]]:
        """Estimate beside measurement, with measured/estimated ratios. `device_hours` are GPU-hours, or
        core-hours of CPU time on a CPU run (the estimate counts one CPU core as one device)."""
        def row(estimated: float, measured: float) -> dict[str, float | None]:
            return {"estimated": estimated, "measured": measured,
                    "ratio": measured / estimated if estimated else None}

        return {"cost_usd": row(self.cost_usd, cost_usd), "wall_hours": row(self.wall_hours, wall_hours),
                "device_hours": row(self.gpu_hours, device_hours), "memory_gib": row(self.memory_gib, memory_gib)}

    def peak_flops_per_gpu(self, precision: str) -> float | None:
        """The catalogue's rated dense FLOP/s for the run's GPU at `precision`, or None."""
        from truecost.estimate.catalogue import find_gpu

        try:
            return float(find_gpu(self.gpu).peak_flops(precision))
        except UserError:
            return None


@dataclass(frozen=True)
class Variant:
    """One way to run the same training: the knobs the pre-flight and the planner may turn."""

    method: str
    recompute: bool
    micro_batch: int
    grad_accum: int
    gpus: int
    precision: str

    def describe(self, base: Variant) -> str:
        """The config changes from `base` to this variant, e.g. `micro_batch: 4, grad_accum: 4`."""
        changes = []
        for name in ("method", "micro_batch", "grad_accum", "precision", "gpus"):
            if getattr(self, name) != getattr(base, name):
                changes.append(f"{name}: {getattr(self, name)}")
        if self.recompute != base.recompute:
            changes.append(f"gradient_checkpointing: {'on' if self.recompute else 'off'}")
        return ", ".join(changes) or "as configured"


@dataclass(frozen=True)
class Target:
    """The hardware the estimate is asked about."""

    gpu: str  # catalogue name; `cpu` for a CPU run
    gpus: int  # processes (GPUs), or cores for a CPU run
    device_memory_gib: float | None
    price_per_gpu_hour: float | None
    pricing: str


def target_for(config: TrainConfig, *, project: Any, device: str, world_size: int) -> Target:
    """The estimate's view of where this run goes: the detected/named GPU, or the CPU with its RAM and price."""
    hw = project.hardware
    if device == "cpu":
        import os

        cores = config.hardware.threads or os.cpu_count() or 1
        return Target(gpu="cpu", gpus=cores * world_size,
                      device_memory_gib=config.hardware.device_memory_gib or host_memory_gib(),
                      price_per_gpu_hour=hw.cpu_usd_per_core_hour or None, pricing=hw.pricing)
    name, memory = config.hardware.gpu, config.hardware.device_memory_gib
    if name is None:
        name, detected_memory = _detected_gpu()
        memory = memory or detected_memory
    return Target(gpu=name or hw.gpu, gpus=world_size, device_memory_gib=memory,
                  price_per_gpu_hour=hw.price_per_gpu_hour, pricing=hw.pricing)


def estimate_variant(config: TrainConfig, variant: Variant, target: Target, with_levers: bool = False) -> Any:
    """The estimate module's TrainingEstimate for `config` run as `variant` on `target`."""
    from truecost.estimate import TrainingSpec, architecture_from_hf_config, estimate_training

    arch = architecture_dict(config)
    if config.model.path is None:
        arch.setdefault("vocab_size", config.tokenizer.vocab_size)
    processes = max(1, variant.gpus)  # data-parallel processes, each with its own micro-batches
    spec = TrainingSpec(
        architecture=architecture_from_hf_config(arch),
        tokens=float(config.max_steps * config.seq_len * variant.micro_batch * variant.grad_accum * processes),
        gpu=target.gpu,
        gpus=variant.gpus if target.gpu != "cpu" else target.gpus,
        precision=variant.precision,
        method=variant.method,
        lora_rank=config.lora.rank,
        seq_len=config.seq_len,
        micro_batch=variant.micro_batch,
        zero=0,  # DDP replicates the model; a CPU run shares one memory
        recompute=RECOMPUTE[variant.recompute],
        pricing=target.pricing,
        price_per_gpu_hour=target.price_per_gpu_hour,
        device_memory_gib=target.device_memory_gib,
    )
    return estimate_training(spec, with_levers=with_levers)


def _memory_total(estimate: Any) -> float:
    memory = estimate.memory_per_gpu_gib
    return float(memory["total"] if isinstance(memory, dict) else getattr(memory, "total", memory))


def _p50(value: Any) -> float:
    return float(value["p50"] if isinstance(value, dict) else getattr(value, "p50", value))


def _breakdown(estimate: Any) -> dict[str, float]:
    memory = estimate.memory_per_gpu_gib
    return {k: float(v) for k, v in dict(memory).items()} if isinstance(memory, dict) else {}


def base_variant(config: TrainConfig, *, recompute: bool, world_size: int, device: str) -> Variant:
    """The run exactly as configured."""
    from truecost.train.model import pick_precision

    precision = pick_precision(config.precision, device).name
    return Variant(method=config.method, recompute=recompute, micro_batch=config.micro_batch,
                   grad_accum=config.grad_accum, gpus=world_size, precision=precision)


def alternatives(base: Variant, device: str) -> list[Variant]:
    """Variants that train the same tokens per optimizer step (micro_batch x grad_accum kept), cheapest first
    to try: checkpointing, smaller micro-batches, LoRA, QLoRA on GPUs, and more GPUs."""
    out = []
    methods = [base.method] + [m for m in ("lora", "qlora") if m != base.method and (m != "qlora" or
                                                                                       device == "cuda")]
    micro_batches = sorted({base.micro_batch // 2**i for i in range(8) if base.micro_batch // 2**i >= 1},
                           reverse=True)
    gpu_counts = [base.gpus] if device == "cpu" else sorted({base.gpus, 2 * base.gpus, 4 * base.gpus,
                                                             8 * base.gpus})
    for method in methods:
        for recompute in (base.recompute, True):
            for micro in micro_batches:
                accum = max(1, base.micro_batch * base.grad_accum // micro)
                for gpus in gpu_counts:
                    out.append(Variant(method=method, recompute=recompute, micro_batch=micro, grad_accum=accum,
                                       gpus=gpus, precision=base.precision))
    return list(dict.fromkeys(out))


def preflight(config: TrainConfig, *, project: Any, device: str, world_size: int = 1) -> Preflight:
    """Estimate the run as configured; with `gradient_checkpointing: auto`, retry with it on when it helps.

    When nothing fits, `levers` lists the nearest configurations that would (found through the same estimate).
    """
    target = target_for(config, project=project, device=device, world_size=world_size)
    choices = {"on": [True], "off": [False], "auto": [False, True]}[config.gradient_checkpointing]
    result: Preflight | None = None
    for recompute in choices:
        variant = base_variant(config, recompute=recompute, world_size=world_size, device=device)
        estimate = estimate_variant(config, variant, target)
        result = _as_preflight(estimate, recompute, target)
        if result.fits:
            return result
    assert result is not None
    base = base_variant(config, recompute=False, world_size=world_size, device=device)
    result.levers = [v.describe(base) for v, _ in plan_variants(config, target, device, base)[:4]]
    return result


def plan_variants(config: TrainConfig, target: Target, device: str, base: Variant) -> list[tuple[Variant, Any]]:
    """Every alternative that fits, cheapest (p50 dollars) first, then the fewest changes."""
    fitting = []
    for variant in alternatives(base, device):
        estimate = estimate_variant(config, variant, target)
        if estimate.fits_in_memory:
            changes = variant.describe(base).count(",") + (variant != base)
            fitting.append((_p50(estimate.cost_usd), changes, variant, estimate))
    fitting.sort(key=lambda row: (row[0], row[1]))
    return [(variant, estimate) for _, _, variant, estimate in fitting]


def _as_preflight(estimate: Any, recompute: bool, target: Target) -> Preflight:
    return Preflight(fits=bool(estimate.fits_in_memory), recompute=recompute, memory_gib=_memory_total(estimate),
                     device_memory_gib=float(estimate.device_memory_gib), cost_usd=_p50(estimate.cost_usd),
                     gpu_hours=_p50(estimate.gpu_hours), wall_hours=_p50(estimate.wall_hours), gpu=target.gpu,
                     breakdown=_breakdown(estimate),
                     estimate=estimate)


def _detected_gpu() -> tuple[str | None, float | None]:
    """The visible GPU's catalogue name (when the catalogue knows it) and its memory in GiB."""
    import torch

    from truecost.estimate.catalogue import find_gpu

    if not torch.cuda.is_available():
        return None, None
    props = torch.cuda.get_device_properties(0)
    memory = props.total_memory / 2**30
    raw = props.name.replace("NVIDIA", "").strip()
    for candidate in (raw, raw.split(" ")[0]):
        try:
            return find_gpu(candidate).name, memory
        except UserError:
            continue
    return None, memory
