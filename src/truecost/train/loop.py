"""The training loop: one readable function from config to a metered, budgeted, resumable run.

    result = train(make_config(max_steps=200))
    result.eval_loss_end, result.cost_usd, result.stopped_by

Order of work: pre-flight estimate (refuse what cannot fit) -> data and tokenizer -> model -> loop with evaluation,
early stopping and budget checks after every optimizer step -> checkpoint -> ledger record -> result.
Under `torchrun` (WORLD_SIZE > 1) the same function runs DDP: gloo on CPU, NCCL on GPUs; rank 0 meters and saves.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from truecost.errors import UserError
from truecost.train import metering
from truecost.train.config import TrainConfig
from truecost.train.data import Batches, Dataset, prepare
from truecost.train.model import build_model, count_parameters, pick_device, pick_precision, require_train_extra

CHECKPOINT_FILE = "checkpoint.pt"
STOPPED_BY = ("completed", "early_stopping", "budget", "pruned", "interrupted")

EvalHook = Callable[[int, float], bool]
"""Called after each evaluation with (step, eval_loss); returning True stops the run as `pruned`."""


@dataclass
class TrainResult:
    """What a run did, measured: losses, throughput, cost, and the estimate made before it."""

    run_id: str | None
    status: str  # completed or stopped (as in the ledger)
    stopped_by: str  # completed, early_stopping, budget, pruned or interrupted
    steps: int
    start_step: int
    tokens: int
    eval_loss_start: float
    eval_loss_end: float
    best_eval_loss: float
    tokens_per_second: float
    wall_seconds: float
    cpu_seconds: float
    gpu_hours: float
    energy_kwh: float
    cost_usd: float
    mfu: float | None
    device: str
    precision: str
    gradient_checkpointing: bool
    world_size: int
    params_total: int
    params_trainable: int
    peak_memory_gib: float
    output_dir: str
    checkpoint: str | None
    budget_limit: str | None = None  # which budget field stopped the run
    eval_history: list[tuple[int, float]] = field(default_factory=list)
    estimate: dict[str, Any] = field(default_factory=dict)  # the pre-flight estimate (cost_usd, memory_gib...)
    measured_vs_estimate: dict[str, Any] = field(default_factory=dict)  # per figure: estimated, measured, ratio

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["eval_history"] = [list(pair) for pair in self.eval_history]
        return data


# -- pure pieces ----------------------------------------------------------------------------------------------
def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the peak learning rate at `step`: linear warm-up, then cosine/linear decay to `min_ratio`."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return min_ratio + (1.0 - min_ratio) * decay


@dataclass
class EarlyStopping:
    """Counts evaluations without an improvement of at least `min_delta`; `stop` once `patience` is reached."""

    patience: int | None
    min_delta: float
    best: float = math.inf
    bad_evals: int = 0

    def update(self, loss: float) -> bool:
        """Record one evaluation; True when the run should stop."""
        if loss < self.best - self.min_delta:
            self.best = loss
            self.bad_evals = 0
        else:
            self.best = min(self.best, loss)
            self.bad_evals += 1
        return self.patience is not None and self.bad_evals >= self.patience


@dataclass
class Spend:
    """What the run has used so far, including earlier sessions of a resumed run."""

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gpu_hours: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0


def budget_exceeded(config: TrainConfig, spend: Spend) -> str | None:
    """The name of the first budget limit reached, or None."""
    budget = config.budget
    checks = (("max_usd", budget.max_usd, spend.cost_usd),
              ("max_gpu_hours", budget.max_gpu_hours, spend.gpu_hours),
              ("max_minutes", budget.max_minutes, spend.wall_seconds / 60.0),
              ("max_tokens", budget.max_tokens, spend.tokens))
    for name, limit, used in checks:
        if limit is not None and used >= limit:
            return name
    return None


# -- distributed ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    """This process's place in a `torchrun`/`accelerate launch` job (world_size 1 when run alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 meters, logs, evaluates for stopping decisions and saves."""
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, NCCL on GPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    return Dist(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size())


def _all_mean(value: float, dist_info: Dist) -> float:
    if dist_info.world_size == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist_info.world_size


def _all_sum(value: float, dist_info: Dist) -> float:
    return _all_mean(value, dist_info) * dist_info.world_size


def _any(flag: bool, dist_info: Dist) -> bool:
    """True on every rank when it is true on rank 0 (rank 0 decides stops, so ranks never diverge)."""
    if dist_info.world_size == 1:
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([1 if flag else 0])
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


# -- the loop -------------------------------------------------------------------------------------------------
def evaluate(model: Any, val: Any, batches: int, micro_batch: int, device: str, precision: Any) -> float:
    """Mean next-token loss over the first `batches` fixed validation micro-batches."""
    import torch

    model.eval()
    losses = []
    with torch.no_grad():
        for i in range(min(batches, max(1, math.ceil(len(val) / micro_batch)))):
            chunk = val[i * micro_batch: (i + 1) * micro_batch].to(device)
            if len(chunk) == 0:
                break
            with torch.autocast(device_type=device, dtype=precision.autocast_dtype,
                                enabled=precision.autocast_dtype is not None):
                losses.append(float(model(input_ids=chunk, labels=chunk).loss))
    model.train()
    return sum(losses) / len(losses)


def train(config: TrainConfig, *, resume: bool = False, ledger: Any = None, project: Any = None,
          on_eval: EvalHook | None = None, kind: str = "train", parent_id: str | None = None,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train `config` to completion, early stop, budget or pruning; meter it into `ledger` (rank 0).

    `project` is the truecost.toml Config (prices, hardware); defaults are used when None. `resume` continues
    from the checkpoint in the run's output folder, at the same step. Everything after the pre-flight (data,
    tokenizer, model, loop, checkpoint) is metered and counts against the budget.
    """
    require_train_extra()
    import torch
    from transformers.utils import logging as hf_logging

    from truecost.config import Config
    from truecost.estimate.pricing import compute_cost_usd, compute_energy_kwh
    from truecost.train.preflight import preflight

    hf_logging.disable_progress_bar()  # stderr is for our own progress lines
    project = project or Config()
    say = log or (lambda _msg: None)
    if config.hardware.threads:
        torch.set_num_threads(config.hardware.threads)
    device = pick_device(config.hardware.device)
    dist_info = init_distributed(device)
    if dist_info.world_size > 1 and device == "cuda":
        device = f"cuda:{dist_info.local_rank}"
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    precision = pick_precision(config.precision, device_type)
    run_dir = config.run_dir
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if resume and not checkpoint_path.is_file():
        raise UserError(f"--resume: no checkpoint at {checkpoint_path} (run without --resume first)")

    # Pre-flight: refuse what cannot fit before reading a byte of data.
    check = preflight(config, project=project, device=device_type, world_size=dist_info.world_size)
    if not check.fits:
        raise UserError(check.refusal())
    use_recompute = check.recompute
    if use_recompute and config.gradient_checkpointing == "auto":
        say("pre-flight: gradient checkpointing turned on so the run fits in memory")

    prices = project.compute_prices()
    gpus_here = dist_info.world_size if device_type == "cuda" else 0
    params = {"config": config.model_dump(mode="json"), "resume": resume, "device": device_type,
              "precision": precision.name, "gradient_checkpointing": use_recompute,
              "world_size": dist_info.world_size, "estimate": check.summary}
    meter_cm = (ledger.run(kind, config.name, params=params, prices=prices, parent_id=parent_id,
                           hardware=_hardware(device_type, dist_info)) if ledger is not None and dist_info.main
                else _NullMeter())
    with meter_cm as run:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        # CPU memory of the run = resident growth from here (the framework itself is not the run's).
        rss0 = metering.rss_gib()
        rss_peak = rss0
        energy = metering.GpuEnergy().start() if device_type == "cuda" else None
        dataset: Dataset = prepare(config, tokenizer_dir=run_dir / "tokenizer" if resume else None)
        model = build_model(config, len(dataset.tokenizer), device)
        if use_recompute:
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
        params_total, params_trainable = count_parameters(model)
        trainable = [p for p in model.parameters() if p.requires_grad]
        # Decay matrices only; norms and biases (1-D) are left alone, as in nanoGPT and the HF Trainer.
        groups = [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": config.optim.weight_decay},
                  {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]
        # The fused kernel (CUDA and CPU) does the whole update in one pass over the parameters.
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.optim.lr,
                                      betas=(config.optim.beta1, config.optim.beta2), fused=True)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
            s, warmup_steps=config.optim.warmup_steps, total_steps=config.max_steps,
            schedule=config.optim.schedule, min_ratio=config.optim.min_lr_ratio))
        scaler = torch.amp.GradScaler(device_type, enabled=precision.loss_scaling)

        step = 0
        base = Spend()  # what earlier sessions of this run spent
        history: list[tuple[int, float]] = []
        stopper = EarlyStopping(config.early_stopping.patience, config.early_stopping.min_delta)
        if resume:
            state = torch.load(checkpoint_path, map_location=device, weights_only=False)
            _unwrap(model).load_state_dict(state["model"], strict=False)
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            scaler.load_state_dict(state["scaler"])
            step = int(state["step"])
            base = Spend(**state["spend"])
            history = [(int(a), float(b)) for a, b in state["history"]]
            stopper = EarlyStopping(config.early_stopping.patience, config.early_stopping.min_delta,
                                    best=state["best"], bad_evals=state["bad_evals"])
            say(f"resumed from {checkpoint_path} at step {step}")
        start_step = step

        ddp_model = model
        if dist_info.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ddp_model = DistributedDataParallel(model, device_ids=[dist_info.local_rank] if device_type == "cuda"
                                                else None)
        batches = Batches(dataset.train, config.micro_batch, config.seed, dist_info.rank, dist_info.world_size)
        flops_token = metering.flops_per_token(params_total, params_trainable, *_shape(model), config.seq_len)
        spend = Spend(**asdict(base))
        tokens_session = 0
        loop_seconds = 0.0

        def refresh_spend() -> None:
            """Bring `spend` up to date: this session (all ranks' CPU time) on top of earlier sessions."""
            wall = time.perf_counter() - wall0
            cpu = _all_sum(time.process_time() - cpu0, dist_info)
            spend.wall_seconds = base.wall_seconds + wall
            spend.cpu_seconds = base.cpu_seconds + cpu
            spend.gpu_hours = base.gpu_hours + wall * gpus_here / 3600.0
            spend.tokens = base.tokens + tokens_session
            spend.cost_usd = base.cost_usd + compute_cost_usd(cpu, wall * gpus_here / 3600.0, prices)

        def run_eval() -> float:
            return _all_mean(evaluate(model, dataset.val, config.eval.batches, config.micro_batch, device,
                                      precision), dist_info)

        if not history:
            history.append((step, run_eval()))
            stopper.update(history[0][1])  # the starting loss is the first mark to beat
            say(f"step {step}: eval loss {history[0][1]:.4f}")
        stopped_by = "completed"
        budget_limit: str | None = None
        refresh_spend()
        if step < config.max_steps:
            budget_limit = budget_exceeded(config, spend)
            if budget_limit:
                stopped_by = "budget"
                say(f"budget {budget_limit} already reached: not training; raise it to continue")
        ddp_model.train()
        try:
            while step < config.max_steps and budget_limit is None:
                tick = time.perf_counter()
                for micro in range(config.grad_accum):
                    ids = batches.get(step * config.grad_accum + micro).to(device, non_blocking=True)
                    sync = micro == config.grad_accum - 1 or dist_info.world_size == 1
                    context = ddp_model.no_sync() if not sync else _nullcontext()
                    with context, torch.autocast(device_type=device_type, dtype=precision.autocast_dtype,
                                                 enabled=precision.autocast_dtype is not None):
                        loss = ddp_model(input_ids=ids, labels=ids).loss / config.grad_accum
                    scaler.scale(loss).backward()
                if config.optim.max_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trainable, config.optim.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                step += 1
                tokens_session += config.tokens_per_step * dist_info.world_size
                loop_seconds += time.perf_counter() - tick
                if step % config.log_every == 0:
                    say(f"step {step}: train loss {float(loss.detach()) * config.grad_accum:.4f}, "
                        f"lr {schedule.get_last_lr()[0]:.2e}")
                stop = False
                if step % config.eval.every_steps == 0 or step == config.max_steps:
                    eval_loss = run_eval()
                    history.append((step, eval_loss))
                    say(f"step {step}: eval loss {eval_loss:.4f}")
                    if stopper.update(eval_loss):
                        stopped_by, stop = "early_stopping", True
                    elif on_eval is not None and on_eval(step, eval_loss):
                        stopped_by, stop = "pruned", True
                refresh_spend()
                if device_type == "cpu":
                    rss_peak = max(rss_peak, metering.rss_gib())
                limit = budget_exceeded(config, spend) if not stop and step < config.max_steps else None
                if limit:
                    stopped_by, budget_limit, stop = "budget", limit, True
                    say(f"budget {limit} reached at step {step}: stopping with a checkpoint")
                if _any(stop, dist_info):
                    break
        except KeyboardInterrupt:  # Ctrl-C: keep what was trained; the checkpoint below saves it
            stopped_by = "interrupted"
            say(f"interrupted at step {step}: saving a checkpoint")

        if history[-1][0] != step:  # stopped between evaluations: measure where it ended
            history.append((step, run_eval()))
        tokens_per_second = tokens_session / loop_seconds if loop_seconds else 0.0
        peak_flops = _peak_flops(device, device_type, precision, check, dist_info.world_size)
        mfu = flops_token * tokens_per_second / peak_flops if peak_flops and tokens_per_second else None
        peak_memory = (torch.cuda.max_memory_allocated() / 2**30 if device_type == "cuda"
                       else max(rss_peak, metering.rss_gib()) - rss0)
        checkpoint = None
        refresh_spend()  # on every rank (a collective); the checkpoint carries the spend for a resumed budget
        if dist_info.main:
            checkpoint = str(_save(run_dir, model, optimizer, schedule, scaler, dataset, step, spend, history,
                                   stopper))
        refresh_spend()
        session_cpu = spend.cpu_seconds - base.cpu_seconds
        session_gpu_hours = spend.gpu_hours - base.gpu_hours
        gpu_kwh = energy.kwh() if energy is not None else None
        # NVML measures the GPUs; the CPU side is always the documented estimate (CPU-seconds x watts per core).
        energy_kwh = compute_energy_kwh(session_cpu, 0.0 if gpu_kwh is not None else session_gpu_hours, prices)
        if gpu_kwh is not None:
            energy_kwh += gpu_kwh * prices.pue
        status = "completed" if stopped_by == "completed" else "stopped"
        comparison = check.compare(
            cost_usd=spend.cost_usd, wall_hours=spend.wall_seconds / 3600.0, memory_gib=peak_memory,
            device_hours=spend.gpu_hours if device_type == "cuda" else spend.cpu_seconds / 3600.0)
        if run is not None:
            run.tokens = tokens_session
            run.gpu_hours = session_gpu_hours
            run.cost_usd = spend.cost_usd - base.cost_usd  # all ranks' CPU time, not only this process's
            run.energy_kwh = energy_kwh
            run.status = status
            run.results.update({
                "stopped_by": stopped_by, "budget_limit": budget_limit, "steps": step, "start_step": start_step,
                "eval_loss_start": history[0][1], "eval_loss_end": history[-1][1], "best_eval_loss": stopper.best,
                "eval_history": [list(pair) for pair in history],
                "tokens_per_second": tokens_per_second, "mfu": mfu, "peak_memory_gib": peak_memory,
                "energy_source": "nvml + CPU estimate" if gpu_kwh is not None else
                                 "estimate: CPU-seconds x watts per core (+ GPU-hours x rated watts) x PUE",
                "cumulative_cost_usd": spend.cost_usd, "params_total": params_total,
                "params_trainable": params_trainable, "checkpoint": checkpoint,
                "measured_vs_estimate": comparison,
            })
    return TrainResult(
        run_id=run.id if run is not None else None, status=status, stopped_by=stopped_by, steps=step,
        start_step=start_step, tokens=spend.tokens, eval_loss_start=history[0][1],
        eval_loss_end=history[-1][1], best_eval_loss=min(loss for _, loss in history),
        tokens_per_second=tokens_per_second, wall_seconds=spend.wall_seconds, cpu_seconds=spend.cpu_seconds,
        gpu_hours=spend.gpu_hours, energy_kwh=energy_kwh, cost_usd=spend.cost_usd, mfu=mfu, device=device_type,
        precision=precision.name, gradient_checkpointing=use_recompute, world_size=dist_info.world_size,
        params_total=params_total, params_trainable=params_trainable, peak_memory_gib=peak_memory,
        output_dir=str(run_dir), checkpoint=checkpoint, budget_limit=budget_limit, eval_history=history,
        estimate=check.summary, measured_vs_estimate=comparison)


# -- helpers --------------------------------------------------------------------------------------------------
class _NullMeter:
    """Stands in for the ledger meter on ranks > 0 and when no ledger is given."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class _nullcontext:  # noqa: N801 - mirrors contextlib.nullcontext, typed for the `with a, b` form above
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def _shape(model: Any) -> tuple[int, int]:
    """(layers, hidden size) from the model's config, for the attention FLOPs."""
    cfg = _unwrap(model).config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None) or 0
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or 0
    return int(layers), int(hidden)


def _hardware(device_type: str, dist_info: Dist) -> str:
    if device_type == "cuda":
        import torch

        return f"gpu: {dist_info.world_size} x {torch.cuda.get_device_name(0)}"
    return f"cpu: {dist_info.world_size} proc x {os.cpu_count() or 1} cores"


def _peak_flops(device: str, device_type: str, precision: Any, check: Any, world_size: int) -> float | None:
    """Rated peak of the GPUs from the catalogue (via the estimate), else a measured matmul peak."""
    rated = check.peak_flops_per_gpu(precision.name) if device_type == "cuda" else None
    if rated:
        return float(rated) * world_size
    return metering.measure_peak_flops(device, precision.autocast_dtype) * world_size


def _save(run_dir: Path, model: Any, optimizer: Any, schedule: Any, scaler: Any, dataset: Dataset, step: int,
          spend: Spend, history: list[tuple[int, float]], stopper: EarlyStopping) -> Path:
    """Write the checkpoint (resumable state) and the model + tokenizer (loadable with from_pretrained)."""
    import torch

    run_dir.mkdir(parents=True, exist_ok=True)
    inner = _unwrap(model)
    trainable = {name for name, param in inner.named_parameters() if param.requires_grad}
    weights = inner.state_dict()
    if len(trainable) < len(list(inner.parameters())):  # LoRA: the frozen base is reloaded from model.path
        weights = {name: value for name, value in weights.items() if name in trainable}
    state = {"model": weights, "optimizer": optimizer.state_dict(),
             "schedule": schedule.state_dict(), "scaler": scaler.state_dict(), "step": step,
             "spend": asdict(spend), "history": history, "best": stopper.best, "bad_evals": stopper.bad_evals}
    path = run_dir / CHECKPOINT_FILE
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    partial.replace(path)  # atomic: a crash mid-write never leaves a broken checkpoint
    inner.save_pretrained(run_dir / "model")
    dataset.tokenizer.save_pretrained(run_dir / "tokenizer")
    return path
