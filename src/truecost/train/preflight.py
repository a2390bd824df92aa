"""Pre-flight: ask the estimate module what this exact run needs before spending anything.

A run is described once, as a `RunShape` (from a TrainConfig here, or from a live Trainer in
`truecost.train.callbacks`); the estimate turns it into memory per process, GPU-hours and dollars. This module
decides on gradient checkpointing (on when that alone makes the run fit) and words the refusal.
On a CPU the host's RAM, shared by the processes on it, plays the part of device memory.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from truecost.errors import UserError
from truecost.train.metering import host_memory_gib

if TYPE_CHECKING:
    from truecost.config import Config
    from truecost.estimate.memory import MemoryBreakdown, Method
    from truecost.train.config import TrainConfig

RECOMPUTE: dict[bool, Literal["none", "full"]] = {False: "none", True: "full"}  # HF checkpointing: whole layers
ZERO_OF_STRATEGY = {"ddp": 0, "fsdp": 3, "deepspeed": 3}  # FSDP full_shard shards like ZeRO-3


@dataclass(frozen=True)
class RunShape:
    """One training run as the estimate sees it: the seam between what trains and what it costs."""

    architecture: dict[str, Any] = field(compare=False, hash=False)  # HF config.json fields, vocab_size included
    max_steps: int
    seq_len: int
    micro_batch: int
    grad_accum: int = 1
    method: Method = "full"
    lora_rank: int = 8
    precision: str = "fp32"  # resolved: bf16, fp16 or fp32
    recompute: bool = False
    world_size: int = 1  # processes in the job, each with its own micro-batches
    local_world_size: int = 1  # processes sharing this machine's memory (matters on a CPU)
    zero: int = 0  # 0: every process holds the whole model (DDP); 3: fully sharded (FSDP, ZeRO-3)
    device: str = "cpu"
    gpu: str | None = None  # catalogue name; None: detected, or truecost.toml's
    device_memory_gib: float | None = None  # None: detected
    threads: int | None = None  # CPU threads per process; None: all cores

    @property
    def tokens(self) -> float:
        """Tokens the whole run trains on."""
        return float(self.max_steps * self.seq_len * self.micro_batch * self.grad_accum * self.world_size)

    def describe(self, base: RunShape) -> str:
        """The config changes from `base` to this shape, e.g. `micro_batch: 4, grad_accum: 4`."""
        names = {"method": "method", "micro_batch": "micro_batch", "grad_accum": "grad_accum",
                 "precision": "precision", "world_size": "gpus"}
        changes = [f"{label}: {getattr(self, name)}" for name, label in names.items()
                   if getattr(self, name) != getattr(base, name)]
        if self.recompute != base.recompute:
            changes.append(f"gradient_checkpointing: {'on' if self.recompute else 'off'}")
        return ", ".join(changes) or "as configured"


@dataclass
class Preflight:
    """The estimate for one run and what it means: fits or not, with checkpointing or not, and why."""

    fits: bool
    recompute: bool
    memory_gib: float  # per process
    device_memory_gib: float  # available to one process
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
class Target:
    """The hardware the estimate is asked about."""

    gpu: str  # catalogue name; `cpu` for a CPU run
    devices: int  # GPUs, or cores for a CPU run (the estimate's unit of compute)
    device_memory_gib: float | None  # per process
    price_per_gpu_hour: float | None
    pricing: str


def shape_of_config(config: TrainConfig, *, device: str, world_size: int = 1, local_world_size: int = 1,
                    recompute: bool | None = None) -> RunShape:
    """The RunShape of a truecost training config on `device` with `world_size` processes."""
    from truecost.train.model import architecture_dict, pick_precision

    arch = architecture_dict(config)
    if config.model.path is None:
        arch.setdefault("vocab_size", config.tokenizer.vocab_size)
    return RunShape(
        architecture=arch, max_steps=config.max_steps, seq_len=config.seq_len, micro_batch=config.micro_batch,
        grad_accum=config.grad_accum, method=config.method, lora_rank=config.lora.rank,
        precision=pick_precision(config.precision, device).name,
        recompute=config.gradient_checkpointing == "on" if recompute is None else recompute,
        world_size=world_size, local_world_size=local_world_size,
        zero=ZERO_OF_STRATEGY[config.distributed.strategy] if world_size > 1 else 0, device=device,
        gpu=config.hardware.gpu, device_memory_gib=config.hardware.device_memory_gib,
        threads=config.hardware.threads)


def target_for(shape: RunShape, project: Config) -> Target:
    """The estimate's view of where this run goes: the detected/named GPU, or the CPU with its RAM and price."""
    hw = project.hardware
    if shape.device == "cpu":
        cores = shape.threads or os.cpu_count() or 1
        memory = (shape.device_memory_gib or host_memory_gib()) / max(1, shape.local_world_size)
        return Target(gpu="cpu", devices=cores * shape.world_size, device_memory_gib=memory,
                      price_per_gpu_hour=hw.cpu_usd_per_core_hour or None, pricing=hw.pricing)
    name, memory_gib = shape.gpu, shape.device_memory_gib
    if name is None:
        name, detected = _detected_gpu()
        memory_gib = memory_gib or detected
    return Target(gpu=name or hw.gpu, devices=shape.world_size, device_memory_gib=memory_gib,
                  price_per_gpu_hour=hw.price_per_gpu_hour, pricing=hw.pricing)


def memory_per_process(shape: RunShape, target: Target) -> MemoryBreakdown:
    """GiB one process holds: the estimate's memory model with the job's processes as the data-parallel group."""
    from truecost.estimate import architecture_from_hf_config
    from truecost.estimate.memory import CUDA_CONTEXT_GIB, training_memory

    return training_memory(architecture_from_hf_config(shape.architecture), method=shape.method,
                           precision=shape.precision, micro_batch=shape.micro_batch, seq_len=shape.seq_len,
                           dp=shape.world_size, zero=shape.zero, tp=1, pp=1, recompute=RECOMPUTE[shape.recompute],
                           lora_rank=shape.lora_rank, context_gib=0.0 if target.gpu == "cpu" else CUDA_CONTEXT_GIB)


def estimate_shape(shape: RunShape, target: Target) -> Preflight:
    """Time and dollars from the estimate module, memory per process from its memory model."""
    from truecost.estimate import TrainingSpec, architecture_from_hf_config, estimate_training

    spec = TrainingSpec(
        architecture=architecture_from_hf_config(shape.architecture), tokens=shape.tokens, gpu=target.gpu,
        gpus=target.devices, precision=shape.precision, method=shape.method, lora_rank=shape.lora_rank,
        seq_len=shape.seq_len, micro_batch=shape.micro_batch, zero=shape.zero, recompute=RECOMPUTE[shape.recompute],
        pricing=target.pricing, price_per_gpu_hour=target.price_per_gpu_hour,
        device_memory_gib=target.device_memory_gib)
    estimate = estimate_training(spec, with_levers=False)
    memory = memory_per_process(shape, target)
    available = float(target.device_memory_gib or estimate.device_memory_gib)
    return Preflight(fits=memory.total <= available or available == 0, recompute=shape.recompute,
                     memory_gib=memory.total, device_memory_gib=available, cost_usd=_p50(estimate.cost_usd),
                     gpu_hours=_p50(estimate.gpu_hours), wall_hours=_p50(estimate.wall_hours), gpu=target.gpu,
                     breakdown={k: float(v) for k, v in memory.to_dict().items()}, estimate=estimate)


def _p50(value: Any) -> float:
    return float(value["p50"] if isinstance(value, dict) else getattr(value, "p50", value))


def alternatives(base: RunShape) -> list[RunShape]:
    """Shapes that train the same tokens per optimizer step (micro_batch x grad_accum kept), cheapest first
    to try: checkpointing, smaller micro-batches, LoRA, QLoRA on GPUs, and more GPUs."""
    methods = [base.method] + [m for m in ("lora", "qlora") if m != base.method and (m != "qlora" or
                                                                                       base.device == "cuda")]
    micro_batches = sorted({base.micro_batch // 2**i for i in range(8) if base.micro_batch // 2**i >= 1},
                           reverse=True)
    worlds = [base.world_size] if base.device == "cpu" else sorted({base.world_size * k for k in (1, 2, 4, 8)})
    out = [dataclasses.replace(base, method=method, recompute=recompute, micro_batch=micro,
                               grad_accum=max(1, base.micro_batch * base.grad_accum // micro), world_size=world)
           for method in methods for recompute in (base.recompute, True) for micro in micro_batches
           for world in worlds]
    return list(dict.fromkeys(out))


def plan_shapes(base: RunShape, project: Config) -> list[tuple[RunShape, Preflight]]:
    """Every alternative that fits, cheapest (p50 dollars) first, then the fewest changes."""
    fitting = []
    for shape in alternatives(base):
        check = estimate_shape(shape, target_for(shape, project))
        if check.fits:
            changes = shape.describe(base).count(",") + (shape != base)
            fitting.append((check.cost_usd, changes, shape, check))
    fitting.sort(key=lambda row: (row[0], row[1]))
    return [(shape, check) for _, _, shape, check in fitting]


def preflight(shape: RunShape, project: Config, gradient_checkpointing: str = "auto") -> Preflight:
    """Estimate the run as described; with `gradient_checkpointing: auto`, retry with it on when it helps.

    When nothing fits, `levers` lists the nearest configurations that would (found through the same estimate).
    """
    choices = {"on": [True], "off": [False], "auto": [shape.recompute, True]}[gradient_checkpointing]
    result: Preflight | None = None
    for recompute in dict.fromkeys(choices):
        result = estimate_shape(dataclasses.replace(shape, recompute=recompute), target_for(shape, project))
        if result.fits:
            return result
    assert result is not None
    base = dataclasses.replace(shape, recompute=False)
    result.levers = [alt.describe(base) for alt, _ in plan_shapes(base, project)[:4]]
    return result


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
