"""`truecost train` as a Hugging Face Trainer with truecost's callbacks: from config to a metered, budgeted,
resumable run.

    result = train(make_config(max_steps=200))
    result.eval_loss_end, result.cost_usd, result.stopped_by

Order of work: pre-flight estimate (refuse what cannot fit, before reading a byte of data) -> ledger run opened
-> data and tokenizer -> model -> `Trainer.train()` with the budget, metering, checkpoint and early-stopping
callbacks -> final model -> ledger run closed with measured beside estimated. Under `torchrun` or
`accelerate launch` the same function runs on every rank (DDP, or FSDP/DeepSpeed from `distributed`).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from truecost.errors import UserError
from truecost.hf_warnings import quiet_renames
from truecost.train import checkpoints, distributed, metering
from truecost.train.callbacks import (
    BudgetCallback,
    BudgetExhausted,
    CheckpointCallback,
    MeteringCallback,
    Session,
    outcome,
)
from truecost.train.config import TrainConfig
from truecost.train.early_stopping import EarlyStopping
from truecost.train.preflight import Preflight, RunShape, preflight, shape_of_config
from truecost.train.result import TrainResult
from truecost.train.spend import Spend

if TYPE_CHECKING:
    from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments

    from truecost.config import Config
    from truecost.ledger import Ledger
    from truecost.train.model import Precision

EvalHook = Callable[[int, float], bool]
"""Called after each evaluation with (step, eval_loss); returning True stops the run as `pruned`."""


@dataclass
class Setup:
    """Where and how this process trains, decided before any data is read."""

    project: Config
    say: Callable[[str], None]
    dist: distributed.Dist
    device: str  # cpu or cuda
    precision: Precision
    shape: RunShape
    check: Preflight
    resume_from: Path | None
    gpu_energy: metering.GpuEnergy | None = None  # NVML's energy counter on NVIDIA GPUs


def _setup(config: TrainConfig, resume: bool, project: Config | None, log: Callable[[str], None] | None) -> Setup:
    """Device, precision, the checkpoint to resume from (verified) and the pre-flight; refuses what cannot fit."""
    import torch
    from transformers.utils import logging as hf_logging

    from truecost.config import Config
    from truecost.train.model import pick_device, pick_precision

    # A file at or above output_dir was a FileExistsError / NotADirectoryError traceback at the first mkdir.
    existing = next(p for p in (config.run_dir, *config.run_dir.parents) if p.exists() or p == p.parent)
    if existing.exists() and not existing.is_dir():
        raise UserError(f"output_dir {config.run_dir}: {existing} is a file, not a folder")
    hf_logging.disable_progress_bar()  # stderr is for our own progress lines
    hf_logging.set_verbosity_error()
    if config.hardware.threads:
        torch.set_num_threads(config.hardware.threads)
    dist = distributed.Dist.from_env()
    device = pick_device(config.hardware.device)
    resume_from = checkpoints.resume_point(config.run_dir) if resume else None
    shape = shape_of_config(config, device=device, world_size=dist.world_size,
                            local_world_size=dist.local_world_size)
    project = project or Config()
    check = preflight(shape, project, config.gradient_checkpointing)
    if not check.fits:
        raise UserError(check.refusal())
    say = (log or (lambda _m: None)) if dist.main else (lambda _m: None)
    if not resume and dist.main:
        _clear_earlier_run(config.run_dir, say)
    if check.recompute and config.gradient_checkpointing == "auto":
        say("pre-flight: gradient checkpointing turned on so the run fits in memory")
    return Setup(project=project, say=say, dist=dist, device=device, precision=pick_precision(config.precision, device),
                 shape=shape, check=check, resume_from=resume_from,
                 gpu_energy=metering.GpuEnergy().start() if device == "cuda" else None)


def _clear_earlier_run(run_dir: Path, say: Callable[[str], None]) -> None:
    """A fresh run replaces an earlier run's checkpoints in its folder: left there, a later --resume could pick
    the earlier run's newer step instead of this run's."""
    import shutil

    old = checkpoints.checkpoints(run_dir)
    for folder in old:
        shutil.rmtree(folder, ignore_errors=True)
    if old:
        say(f"starting afresh in {run_dir}: removed {len(old)} checkpoint(s) of an earlier run "
            "(use --resume to continue one instead)")


class RunnerFlow(TrainerCallback):
    """What `truecost train` adds to the Trainer's flow: progress lines, early stopping, pruning, an evaluation
    where a stop falls between evaluations, a clean stop with a checkpoint on Ctrl-C or SIGTERM."""

    def __init__(self, config: TrainConfig, session: Session, on_eval: EvalHook | None) -> None:
        self.config, self.session, self.on_eval = config, session, on_eval
        self.stopper = EarlyStopping(config.early_stopping.patience, config.early_stopping.min_delta)
        self.interrupted = False
        self._previous: dict[int, Any] = {}
        self._tick = 0.0

    def _interrupt(self, signum: int, _frame: FrameType | None) -> None:
        self.interrupted = True

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        saved = self.session.extra.get("early_stopping", {})
        self.stopper.best, self.stopper.bad_evals = float(saved.get("best", self.stopper.best)), int(
            saved.get("bad_evals", 0))
        for signum in (signal.SIGINT, signal.SIGTERM):  # preemption sends SIGTERM: save before going
            try:
                self._previous[signum] = signal.signal(signum, self._interrupt)
            except ValueError:  # not the main thread: leave signals alone
                break

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        self._tick = time.perf_counter()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        self.session.step_seconds += time.perf_counter() - self._tick
        if distributed.any_rank(self.interrupted):
            control.should_training_stop = control.should_save = True
            if self.session.stopped_by == "completed":
                self.session.stopped_by = "interrupted"
                self.session.say(f"interrupted at step {state.global_step}: saving a checkpoint")
        if control.should_training_stop and state.global_step % self.config.eval.every_steps:
            control.should_evaluate = True  # measure where it ended

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.session.say(f"step {state.global_step}: train loss {logs['loss']:.4f}, "
                             f"lr {logs.get('learning_rate', 0.0):.2e}")

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, Any] | None = None, **kwargs: Any) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None:
            return
        self.session.say(f"step {state.global_step}: eval loss {loss:.4f}")
        stop = None
        if self.stopper.update(float(loss)):
            stop = "early_stopping"
        elif self.on_eval is not None and state.global_step > 0 and self.on_eval(state.global_step, float(loss)):
            stop = "pruned"
        self.session.extra["early_stopping"] = {"best": self.stopper.best, "bad_evals": self.stopper.bad_evals}
        if stop and self.session.stopped_by == "completed" and not self.session.failure:
            self.session.stopped_by = stop
            control.should_training_stop = control.should_save = True


def _params(config: TrainConfig, setup: Setup, resume: bool) -> dict[str, Any]:
    return {"config": config.model_dump(mode="json"), "resume": resume, "device": setup.device,
            "precision": setup.precision.name, "gradient_checkpointing": setup.check.recompute,
            "world_size": setup.dist.world_size, "task": config.task, "strategy": config.distributed.strategy,
            "estimate": setup.check.summary}


def train(config: TrainConfig, *, resume: bool = False, ledger: Ledger | None = None, project: Config | None = None,
          on_eval: EvalHook | None = None, kind: str = "train", parent_id: str | None = None,
          log: Callable[[str], None] | None = None, callbacks: list[TrainerCallback] | None = None) -> TrainResult:
    """Train `config` to completion, early stop, budget, pruning or a failure; meter it into `ledger` (rank 0).

    `project` is the truecost.toml Config (prices, hardware); defaults are used when None. `resume` continues
    from the newest complete checkpoint in the run's output folder, at the same step, with the spend of every
    earlier session (from the ledger when it has them) counting against the budget. `callbacks` are added to the
    Trainer's, after truecost's own.
    """
    from truecost.train.model import require_train_extra

    require_train_extra()
    setup = _setup(config, resume, project, log)
    session = Session(project=setup.project, say=setup.say, ledger=ledger, seq_len=config.seq_len)
    session.shape, session.check = setup.shape, setup.check
    meter = MeteringCallback(ledger, kind=kind, name=config.name, params=_params(config, setup, resume),
                             parent_id=parent_id, auto_close=False, session=session)
    session.start_clock(setup.device)
    meter.open(output_dir=str(config.run_dir))  # before reading data: the ledger run meters all of it
    try:
        with quiet_renames():
            trainer = _build(config, setup, session, meter, on_eval, list(callbacks or []))
            _run(trainer, setup)
            return _finish(config, setup, session, meter, trainer)
    except KeyboardInterrupt:
        meter.close(results={"stopped_by": "interrupted"}, status="stopped")
        raise
    except BaseException as exc:
        meter.close(results={"error": f"{type(exc).__name__}: {str(exc)[:500]}"}, status="failed")
        raise


def _build(config: TrainConfig, setup: Setup, session: Session, meter: MeteringCallback,
           on_eval: EvalHook | None, extra: list[TrainerCallback]) -> Trainer:
    from truecost.train.data import prepare
    from truecost.train.model import build_model
    from truecost.train.trainer import arguments, build_trainer

    data = prepare(config, tokenizer_dir=config.run_dir / "tokenizer" if setup.resume_from else None)
    model = build_model(config, len(data.tokenizer), setup.device)
    args = arguments(config, device=setup.device, precision=setup.precision.name, recompute=setup.check.recompute,
                     world_size=setup.dist.world_size, resuming=setup.resume_from is not None)
    ckpt = config.checkpoint
    callbacks = [BudgetCallback(**config.budget.model_dump(), session=session), meter,
                 RunnerFlow(config, session, on_eval),
                 CheckpointCallback(every_steps=ckpt.every_steps, every_minutes=ckpt.every_minutes, keep=ckpt.keep,
                                    session=session), *extra]
    return build_trainer(config, args, model, data, callbacks)


def _run(trainer: Trainer, setup: Setup) -> None:
    """trainer.train(), resumed when asked; a budget already spent trains nothing and is not an error."""
    try:
        trainer.train(resume_from_checkpoint=str(setup.resume_from) if setup.resume_from else None)
    except BudgetExhausted as exc:
        setup.say(str(exc))


def _finish(config: TrainConfig, setup: Setup, session: Session, meter: MeteringCallback,
            trainer: Trainer) -> TrainResult:
    """Save the final model (unless the run failed), gather every rank's resources, close the ledger run."""
    state = trainer.state
    if not session.failure:
        trainer.save_model(str(config.run_dir / "model"))  # every rank: FSDP gathers the shards first
        if setup.dist.main:
            trainer.processing_class.save_pretrained(str(config.run_dir / "tokenizer"))  # type: ignore[union-attr]
    spend = session.read(trainer.args, state, fresh=True)
    figures = {**outcome(session, state), **_measures(config, setup, session, trainer.model)}
    found = [p for p in checkpoints.checkpoints(config.run_dir) if (p / checkpoints.COMPLETE_MARKER).is_file()]
    figures["checkpoint"] = str(found[-1]) if found else None
    session_kwh, total_kwh, figures["energy_source"] = _energy(setup, session)
    meter.close(results=figures, energy_kwh=session_kwh)
    history = [(int(s), float(v)) for s, v in figures["eval_history"]]
    nan = float("nan")
    return TrainResult(
        run_id=session.run_id, status=figures["status"], stopped_by=session.stopped_by, steps=state.global_step,
        start_step=session.start_step, tokens=spend.tokens, eval_loss_start=history[0][1] if history else nan,
        eval_loss_end=history[-1][1] if history else nan, best_eval_loss=figures["best_eval_loss"] or nan,
        tokens_per_second=figures["tokens_per_second"], wall_seconds=spend.wall_seconds,
        cpu_seconds=spend.cpu_seconds, gpu_hours=spend.gpu_hours, energy_kwh=total_kwh,
        cost_usd=spend.cost_usd, mfu=figures["mfu"], device=setup.device, precision=setup.precision.name,
        gradient_checkpointing=setup.check.recompute, world_size=setup.dist.world_size,
        params_total=figures["params_total"], params_trainable=figures["params_trainable"],
        peak_memory_gib=figures["peak_memory_gib"], output_dir=str(config.run_dir), checkpoint=figures["checkpoint"],
        budget_limit=session.budget_limit, eval_history=history, estimate=setup.check.summary,
        measured_vs_estimate=figures["measured_vs_estimate"], task=config.task,
        strategy=config.distributed.strategy, failure=session.failure,
        previous_run_ids=figures["previous_run_ids"], ranks=figures["ranks"])


def _measures(config: TrainConfig, setup: Setup, session: Session, model: Any) -> dict[str, Any]:
    """Throughput, MFU, parameters, and every rank's host, pid, CPU time and peak memory (a collective)."""
    ranks = distributed.gather({"rank": setup.dist.rank, **distributed.this_process(),
                                "peak_memory_gib": _peak_memory_gib(setup.device, session),
                                "cpu_seconds": session.clock.own_cpu_seconds() if session.clock else 0.0})
    tokens = max(0, session.spend.tokens - session.tokens_start)
    tokens_per_second = tokens / session.step_seconds if session.step_seconds else 0.0
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"tokens_per_second": tokens_per_second, "params_total": total, "params_trainable": trainable,
            "mfu": _mfu(setup, model, total, trainable, config.seq_len, tokens_per_second), "ranks": ranks,
            "peak_memory_gib": max(r["peak_memory_gib"] for r in ranks)}


def _peak_memory_gib(device: str, session: Session) -> float:
    """Peak GPU memory allocated, or on CPU the growth of resident memory over the run (sampled every step)."""
    if device == "cuda":
        import torch

        return float(torch.cuda.max_memory_allocated() / 2**30)
    return max(session.rss_peak, metering.rss_gib()) - session.rss0


def _energy(setup: Setup, session: Session) -> tuple[float, float, str]:
    """(this session's kWh, the run's kWh, how they were found): NVML for this session's GPUs when it can be
    read, the documented estimate for CPUs and for earlier sessions."""
    from truecost.estimate.pricing import compute_energy_kwh

    prices = session.project.compute_prices()
    total, prior = session.spend, session.clock.prior if session.clock else Spend()
    this = total.minus(prior)
    gpu_kwh = setup.gpu_energy.kwh() if setup.gpu_energy is not None else None
    if gpu_kwh is None:
        return (compute_energy_kwh(this.cpu_seconds, this.gpu_hours, prices),
                compute_energy_kwh(total.cpu_seconds, total.gpu_hours, prices),
                "estimate: CPU-seconds x watts per core (+ GPU-hours x rated watts) x PUE")
    measured = compute_energy_kwh(this.cpu_seconds, 0.0, prices) + gpu_kwh * prices.pue
    return measured, measured + compute_energy_kwh(prior.cpu_seconds, prior.gpu_hours, prices), \
        "nvml for the GPUs + CPU estimate"


def _mfu(setup: Setup, model: Any, params_total: int, params_trainable: int, seq_len: int,
         tokens_per_second: float) -> float | None:
    """Model FLOPs utilisation over the catalogue's rated peak (GPU) or a measured matmul peak (CPU)."""
    if not tokens_per_second:
        return None
    cfg = getattr(model, "config", None)
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    flops = metering.flops_per_token(params_total, params_trainable, layers, hidden, seq_len)
    rated = setup.check.peak_flops_per_gpu(setup.precision.name) if setup.device == "cuda" else None
    peak = (rated or metering.measure_peak_flops(setup.device, setup.precision.autocast_dtype)) * setup.dist.world_size
    return flops * tokens_per_second / peak if peak else None
