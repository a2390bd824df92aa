"""truecost inside any Hugging Face Trainer (and TRL's SFTTrainer / DPOTrainer, which are Trainers).

    from truecost.train.callbacks import truecost_callbacks
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      callbacks=truecost_callbacks(max_usd=5.0, ledger=Ledger()))

- `PreflightCallback` (on_train_begin): asks the estimate whether this exact run fits in memory and what it will
  cost; refuses one that cannot fit (UserError naming the changes that would), turns gradient checkpointing on
  when that alone makes it fit, and prints the estimate.
- `BudgetCallback`: stops at the first of dollars, GPU-hours, wall-clock minutes or tokens, with a checkpoint;
  spend carries over from the checkpoint a run resumes from, and from the ledger runs of earlier sessions.
- `MeteringCallback`: opens the ledger run, flushes spend so far while training, and closes it with the
  measured cost beside the estimate.
- `CheckpointCallback`: checkpoints every N steps or M minutes, never saves non-finite weights (a non-finite
  loss fails the run), seals each checkpoint with checksums and keeps the last good ones.

The callbacks built by one `truecost_callbacks()` call share one `Session`; built one by one they each get their
own, and still work alone.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from truecost.errors import UserError
from truecost.train import checkpoints, distributed, metering
from truecost.train.config import BudgetSettings
from truecost.train.preflight import Preflight, RunShape, preflight
from truecost.train.spend import Spend, SpendClock, budget_exceeded

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from truecost.config import Config
    from truecost.estimate.memory import Method
    from truecost.ledger import Ledger, Meter

Say = Callable[[str], None]
RUNS_FILE = "truecost-runs.json"  # ledger ids of every session started in an output folder, killed ones too


class BudgetExhausted(UserError):
    """The run's budget was already spent when training would start (raise it to continue)."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the shared state ------------------------------------------------------------------------------------------
class Session:
    """What truecost's callbacks share during one `trainer.train()`: spend, estimate, ledger run, outcome."""

    def __init__(self, *, project: Config | None = None, say: Say | None = None, ledger: Ledger | None = None,
                 seq_len: int | None = None) -> None:
        from truecost.config import Config

        self.project = project or Config()
        self.dist = distributed.Dist.from_env()
        self.say: Say = (say or _stderr) if self.dist.main else (lambda _m: None)
        self.ledger = ledger
        self.seq_len = seq_len
        self.shape: RunShape | None = None
        self.check: Preflight | None = None
        self.clock: SpendClock | None = None
        self.spend = Spend()
        self.run_ids: list[str] = []  # ledger runs of every session of this run, this one last
        self.run_id: str | None = None  # this session's ledger run (rank 0, once the metering opened it)
        self.extra: dict[str, dict[str, Any]] = {}  # callbacks' own state, saved with each checkpoint
        self.resumed: dict[str, Any] = {}  # truecost.json of the checkpoint this session resumed from
        self.stopped_by = "completed"
        self.budget_limit: str | None = None
        self.failure: str | None = None  # why the run failed (a non-finite loss)
        self.start_step = 0
        self.tokens_start = 0
        self.step_seconds = 0.0  # time inside optimizer steps, for tokens per second
        self.rss0 = self.rss_peak = metering.rss_gib()
        self._began = False
        self._read_step = -1
        self._saved_step = -1

    def start_clock(self, device: str) -> None:
        """Start metering now (the runner does it before reading data, so that data and model count too)."""
        if self.clock is None:
            self.clock = SpendClock(self.project.compute_prices(),
                                    self.dist.world_size if device.startswith("cuda") else 0)
            self.clock.start()

    def begin(self, args: TrainingArguments, state: TrainerState) -> None:
        """Once per train(): start the clock and, when resuming, take over what earlier sessions spent."""
        if self._began:
            return
        self._began = True
        self.start_clock(args.device.type)
        assert self.clock is not None
        self.start_step, self.tokens_start = state.global_step, int(state.num_input_tokens_seen or 0)
        if state.global_step <= 0:
            return
        folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        self.resumed = checkpoints.read_state(folder) if folder.is_dir() else {}
        ids = [i for i in dict.fromkeys([*self.resumed.get("run_ids", []), *_runs_file(str(args.output_dir))])
               if i != self.run_id]
        self.run_ids = ids + ([self.run_id] if self.run_id else [])
        snapshot = Spend.from_dict(self.resumed.get("spend", {}))
        self.clock.prior = snapshot.most(ledger_spend(self.ledger, ids)) if self.ledger else snapshot
        self.clock.prior.tokens = self.tokens_start
        self.extra = {k: dict(v) for k, v in self.resumed.get("extra", {}).items()}

    def read(self, args: TrainingArguments, state: TrainerState, fresh: bool = False) -> Spend:
        """Cumulative spend at this step (once per step unless `fresh`: it is a collective under several
        processes, so every rank must ask alike)."""
        if fresh or self._read_step != state.global_step or self.clock is None:
            self.begin(args, state)
            assert self.clock is not None
            tokens = int(state.num_input_tokens_seen or 0)
            if not tokens and self.shape is not None:  # the Trainer was not asked to count: an upper bound
                per_step = self.shape.seq_len * self.shape.micro_batch * self.shape.grad_accum * self.shape.world_size
                tokens = state.global_step * per_step
            self.spend = self.clock.read(tokens, distributed.all_sum)
            self.rss_peak = max(self.rss_peak, metering.rss_gib())
            self._read_step = state.global_step
        return self.spend

    def save(self, args: TrainingArguments, state: TrainerState) -> None:
        """After the Trainer wrote checkpoint-<step>: add truecost.json, then seal it (rank 0, once per step)."""
        if self._saved_step == state.global_step:
            return
        self._saved_step = state.global_step
        spend = self.read(args, state)
        distributed.barrier()  # every rank's shard is on disk before the seal says the folder is whole
        if not self.dist.main:
            return
        folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        checkpoints.write_state(folder, {"step": state.global_step, "run_ids": self.run_ids,
                                         "spend": spend.to_dict(), "extra": self.extra})
        checkpoints.seal(folder, step=state.global_step)

    def fail(self, control: TrainerControl, why: str) -> None:
        """Stop now without saving: what would be saved is not trustworthy."""
        if self.failure is None:
            self.failure = why
            self.stopped_by = "non_finite"
            self.say(f"stopping: {why}; the last good checkpoint is kept and the run is marked failed")
        control.should_training_stop = True
        control.should_save = False


def _runs_file(output_dir: str) -> list[str]:
    path = Path(output_dir) / RUNS_FILE
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _write_runs_file(output_dir: str, ids: list[str]) -> None:
    path = Path(output_dir) / RUNS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{RUNS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(ids) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def ledger_spend(ledger: Ledger | None, run_ids: list[str]) -> Spend:
    """What the given ledger runs spent in total (runs the ledger does not know count as nothing)."""
    total = Spend()
    if ledger is None:
        return total
    for run_id in run_ids:
        try:
            run = ledger.get_run(run_id)
        except UserError:
            continue
        total = total.plus(Spend(wall_seconds=run.wall_seconds, cpu_seconds=run.cpu_seconds,
                                 gpu_hours=run.gpu_hours, tokens=0, cost_usd=run.cost_usd))
    return total


# -- describing a live Trainer run to the estimate ---------------------------------------------------------------
def _unwrap(model: Any) -> Any:
    while hasattr(model, "module"):
        model = model.module
    return model


def _method(model: Any) -> tuple[Any, Method, int]:
    """(the base transformers model, full/lora/qlora, LoRA rank) of a model, PEFT-wrapped or not."""
    config = getattr(model, "peft_config", None)
    if not config:
        return model, "full", 8
    adapter = next(iter(config.values()))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    quantized = bool(getattr(base, "is_loaded_in_4bit", False))
    return base, "qlora" if quantized else "lora", int(getattr(adapter, "r", 8) or 8)


def _zero(args: TrainingArguments) -> int:
    """How the job shards the model, as a ZeRO stage: FSDP full_shard = 3, shard_grad_op = 2, DeepSpeed's own."""
    if args.fsdp:
        options = args.fsdp if isinstance(args.fsdp, list) else [args.fsdp]
        return 2 if "shard_grad_op" in " ".join(str(getattr(o, "value", o)) for o in options) else 3
    ds = getattr(args, "hf_deepspeed_config", None)
    return int(ds.get_value("zero_optimization.stage", 0) or 0) if ds is not None else 0


def _seq_len(args: TrainingArguments, dataset: Any, architecture: dict[str, Any]) -> int:
    """The sequence length the run trains on: TRL's max_length, else the first example's, else the model's."""
    for name in ("max_length", "max_seq_length"):
        value = getattr(args, name, None)
        if isinstance(value, int) and value > 0:
            return value
    try:
        first = dataset[0]["input_ids"]
        return int(len(first))
    except (TypeError, KeyError, IndexError, AttributeError):
        return int(architecture.get("max_position_embeddings") or 2048)


def shape_of_trainer(args: TrainingArguments, state: TrainerState, model: Any, *, dataset: Any = None,
                     seq_len: int | None = None, gpu: str | None = None,
                     device_memory_gib: float | None = None) -> RunShape:
    """The RunShape of the run a Trainer is about to do, read from its arguments, state and model."""
    import torch

    base, method, rank = _method(_unwrap(model))
    arch = base.config.to_dict()
    device = "cuda" if args.device.type == "cuda" else "cpu"
    dist = distributed.Dist.from_env()
    return RunShape(
        architecture=arch, max_steps=int(state.max_steps or args.max_steps),
        micro_batch=args.per_device_train_batch_size, seq_len=seq_len or _seq_len(args, dataset, arch),
        grad_accum=args.gradient_accumulation_steps,
        method=method, lora_rank=rank, precision="bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        recompute=bool(args.gradient_checkpointing), world_size=max(1, args.world_size),
        local_world_size=dist.local_world_size, zero=_zero(args) if args.world_size > 1 else 0, device=device,
        gpu=gpu, device_memory_gib=device_memory_gib, threads=torch.get_num_threads() if device == "cpu" else None)


def _describe(check: Preflight) -> str:
    where = "CPU" if check.gpu == "cpu" else check.gpu
    return (f"pre-flight: ~{check.memory_gib:.2f} of {check.device_memory_gib:.1f} GiB per process on {where}; "
            f"estimated ${check.cost_usd:.4g}, {check.wall_hours * 60:.3g} min"
            + (", gradient checkpointing on" if check.recompute else ""))


# -- the callbacks ---------------------------------------------------------------------------------------------
class PreflightCallback(TrainerCallback):
    """Refuse a run that cannot fit, or turn gradient checkpointing on when that makes it fit; print the estimate.

    `gradient_checkpointing`: auto (may turn it on), on, or off (refuse rather than turn it on).
    """

    def __init__(self, *, seq_len: int | None = None, gradient_checkpointing: str = "auto", gpu: str | None = None,
                 device_memory_gib: float | None = None, project: Config | None = None,
                 session: Session | None = None) -> None:
        self.session = session or Session(project=project, seq_len=seq_len)
        self.mode, self.gpu, self.memory = gradient_checkpointing, gpu, device_memory_gib

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: Any = None, train_dataloader: Any = None, **kwargs: Any) -> None:
        session = self.session
        session.shape = shape_of_trainer(args, state, model, dataset=getattr(train_dataloader, "dataset", None),
                                         seq_len=session.seq_len, gpu=self.gpu, device_memory_gib=self.memory)
        mode = "on" if session.shape.recompute else self.mode
        check = preflight(session.shape, session.project, mode)
        if not check.fits:
            raise UserError(check.refusal())
        if check.recompute and not session.shape.recompute:
            inner = _unwrap(model)
            kwargs = {"use_reentrant": False}
            if hasattr(inner, "activation_checkpointing_enable"):  # transformers 5 renamed it
                inner.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
            if hasattr(inner, "enable_input_require_grads"):
                inner.enable_input_require_grads()  # frozen embeddings (LoRA) must still pass gradients on
            session.say("pre-flight: gradient checkpointing turned on so the run fits in memory")
        session.check = check
        session.say(_describe(check))


class BudgetCallback(TrainerCallback):
    """Stop at the first budget limit reached (dollars, GPU-hours, wall-clock minutes, tokens), with a checkpoint."""

    def __init__(self, *, max_usd: float | None = None, max_gpu_hours: float | None = None,
                 max_minutes: float | None = None, max_tokens: int | None = None, ledger: Ledger | None = None,
                 project: Config | None = None, session: Session | None = None) -> None:
        self.session = session or Session(project=project, ledger=ledger)
        self.budget = BudgetSettings(max_usd=max_usd, max_gpu_hours=max_gpu_hours, max_minutes=max_minutes,
                                     max_tokens=max_tokens)

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if self.budget.max_tokens is not None and args.include_num_input_tokens_seen in ("no", False):
            args.include_num_input_tokens_seen = "all"  # a token budget needs the Trainer to count them

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self.session.begin(args, state)
        assert self.session.clock is not None
        limit = budget_exceeded(self.budget, self.session.clock.prior)
        if limit:
            self.session.stopped_by, self.session.budget_limit = "budget", limit
            raise BudgetExhausted(f"budget {limit} already reached by earlier sessions of this run: not training; "
                                  "raise it to continue")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        spend = self.session.read(args, state)
        limit = budget_exceeded(self.budget, spend) if state.global_step < state.max_steps else None
        if distributed.any_rank(limit is not None):
            control.should_training_stop = control.should_save = True
            if self.session.stopped_by == "completed":
                self.session.stopped_by, self.session.budget_limit = "budget", limit
                self.session.say(f"budget {limit} reached at step {state.global_step}: stopping with a checkpoint")

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.session.save(args, state)


class MeteringCallback(TrainerCallback):
    """One ledger run for the whole job (opened by rank 0), flushed while training, closed with the measured
    cost beside the estimate. `close()` may be called by the caller instead (`auto_close=False`)."""

    def __init__(self, ledger: Ledger | None, *, kind: str = "train", name: str | None = None,
                 params: dict[str, Any] | None = None, parent_id: str | None = None, flush_seconds: float = 15.0,
                 auto_close: bool = True, project: Config | None = None, session: Session | None = None) -> None:
        self.session = session or Session(project=project, ledger=ledger)
        self.session.ledger = self.session.ledger or ledger
        self.ledger, self.kind, self.name, self.parent_id = ledger, kind, name, parent_id
        self.params = dict(params or {})
        self.flush_seconds, self.auto_close = flush_seconds, auto_close
        self.meter: Meter | None = None
        self._flushed_at = 0.0

    @property
    def run_id(self) -> str | None:
        """This session's ledger run id (rank 0, once open)."""
        return self.meter.id if self.meter is not None else None

    def open(self, args: TrainingArguments | None = None, output_dir: str | None = None) -> None:
        """Open the ledger run now (idempotent; rank 0 only)."""
        if self.meter is not None or self.ledger is None or not self.session.dist.main:
            return
        from truecost.ledger import Meter

        params = {**self.params, "world_size": self.session.dist.world_size}
        self.meter = Meter(self.ledger, self.kind, self.name or (args.run_name if args else None) or "train",
                           params=params, parent_id=self.parent_id, prices=self.session.project.compute_prices(),
                           hardware=metering.describe_job(self.session.dist.world_size))
        self.meter.__enter__()
        self.session.run_id = self.meter.id
        atexit.register(self._close_on_exit)
        folder = output_dir or (args.output_dir if args else None)
        if folder:  # before any checkpoint exists, so that a kill -9 still leaves this run's id behind
            earlier = _runs_file(folder) if self.params.get("resume") else []
            _write_runs_file(folder, [*earlier, self.meter.id])

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: Any = None, train_dataloader: Any = None, **kwargs: Any) -> None:
        session = self.session
        session.begin(args, state)
        if session.check is None and model is not None:  # no PreflightCallback: estimate quietly, refuse nothing
            session.shape = session.shape or shape_of_trainer(args, state, model, seq_len=session.seq_len,
                                                              dataset=getattr(train_dataloader, "dataset", None))
            session.check = preflight(session.shape, session.project, "on" if session.shape.recompute else "off")
        if state.global_step > 0:
            self.params["resume"] = True
        self.open(args)
        if self.meter is not None:
            previous = [i for i in session.run_ids if i != self.meter.id]
            self.meter.record.params.update({"previous_run_ids": previous,
                                             "estimate": session.check.summary if session.check else None})
            session.run_ids = [*previous, self.meter.id]

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        self.session.read(args, state)
        if self.meter is not None and time.monotonic() - self._flushed_at >= self.flush_seconds:
            self.flush()

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.session.save(args, state)
        self.flush()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if self.auto_close:
            self.session.read(args, state)
            self.close(results=outcome(self.session, state))

    def flush(self) -> None:
        """Write spend so far to the ledger run, so a killed process still leaves what it spent."""
        if self.meter is None:
            return
        self._fill(self.meter)
        self._flushed_at = time.monotonic()
        self._store(self.meter, status=None)

    def _prior(self) -> Spend:
        return self.session.clock.prior if self.session.clock is not None else Spend()

    def _fill(self, meter: Meter) -> None:
        """This session's share of the cumulative spend (earlier sessions have their own ledger runs)."""
        from truecost.estimate.pricing import compute_energy_kwh

        session = self.session.spend.minus(self._prior())
        meter.tokens = max(0, self.session.spend.tokens - self.session.tokens_start)
        meter.gpu_hours = session.gpu_hours
        meter.cost_usd = session.cost_usd  # every rank's CPU time, not only this process's
        meter.energy_kwh = compute_energy_kwh(session.cpu_seconds, session.gpu_hours, meter.prices)

    def close(self, *, results: dict[str, Any], status: str | None = None, energy_kwh: float | None = None) -> None:
        """Close the ledger run with `results` (idempotent)."""
        meter, self.meter = self.meter, None
        if meter is None:
            return
        self._fill(meter)
        if energy_kwh is not None:
            meter.energy_kwh = energy_kwh
        meter.results.update(results)
        meter.status = status or results.get("status")
        meter.__exit__(None, None, None)
        if self.session.dist.world_size > 1:  # the Meter timed this process; the job is every rank's time
            self._store(meter, status=meter.record.status)

    def _store(self, meter: Meter, status: str | None) -> None:
        """Write this session's spend (all ranks) onto the ledger record; status None keeps it `running`."""
        session = self.session.spend.minus(self._prior())
        record = meter.record
        record.tokens, record.gpu_hours = int(meter.tokens), meter.gpu_hours
        record.cost_usd, record.energy_kwh = float(meter.cost_usd or 0.0), float(meter.energy_kwh or 0.0)
        record.cpu_seconds, record.wall_seconds = session.cpu_seconds, session.wall_seconds
        record.status = status or record.status
        if status is None:
            record.heartbeat_at = datetime.now(UTC)  # alive, and this is what it has spent
        self.ledger.save_run(record)  # type: ignore[union-attr]

    def _close_on_exit(self) -> None:
        """The process is ending with the run still open (an exception escaped train()): record it as failed."""
        if self.meter is not None:
            self.close(results={"error": "the process ended during training"}, status="failed")


class CheckpointCallback(TrainerCallback):
    """Checkpoint every `every_steps` steps or `every_minutes` minutes and when training stops; never save
    non-finite weights (a non-finite loss stops the run as failed); seal each checkpoint; keep the last `keep`."""

    def __init__(self, *, every_steps: int | None = None, every_minutes: float | None = None,
                 keep: int | None = None, project: Config | None = None, session: Session | None = None) -> None:
        self.session = session or Session(project=project)
        self.every_steps, self.every_minutes, self.keep = every_steps, every_minutes, keep
        self._last_save = time.monotonic()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: Any = None, **kwargs: Any) -> None:
        if state.global_step > 0 and model is not None and distributed.any_rank(not _finite_weights(model)):
            self.session.fail(control, f"the checkpoint of step {state.global_step} holds non-finite weights")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: Any = None, **kwargs: Any) -> None:
        step = state.global_step
        due = self.every_steps is not None and step % self.every_steps == 0
        if self.every_minutes is not None:  # clocks differ between ranks: any rank that is due makes all save
            due = distributed.any_rank(time.monotonic() - self._last_save >= self.every_minutes * 60) or due
        if (due or control.should_training_stop) and not self.session.failure:
            control.should_save = True
        if control.should_save and model is not None and distributed.any_rank(not _finite_weights(model)):
            self.session.fail(control, f"non-finite weights at step {step}")

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        loss = (logs or {}).get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            self.session.fail(control, f"non-finite training loss ({loss}) at step {state.global_step}")

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, Any] | None = None, **kwargs: Any) -> None:
        loss = (metrics or {}).get("eval_loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            self.session.fail(control, f"non-finite eval loss ({loss}) at step {state.global_step}")

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.session.save(args, state)
        self._last_save = time.monotonic()
        if self.keep is not None and self.session.dist.main:
            checkpoints.prune(Path(str(args.output_dir)), self.keep)


def _finite_weights(model: Any) -> bool:
    """True when every trainable parameter (this rank's shard) is finite."""
    import torch

    with torch.no_grad():
        return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


def outcome(session: Session, state: TrainerState) -> dict[str, Any]:
    """The figures a finished session records: how it stopped, its losses and its cumulative spend."""
    history = [(int(e["step"]), float(e["eval_loss"])) for e in state.log_history if "eval_loss" in e]
    status = "failed" if session.failure else "completed" if session.stopped_by == "completed" else "stopped"
    return {"status": status, "stopped_by": session.stopped_by, "budget_limit": session.budget_limit,
            "failure": session.failure, "steps": state.global_step, "start_step": session.start_step,
            "eval_history": [list(pair) for pair in history],
            "eval_loss_start": history[0][1] if history else None,
            "eval_loss_end": history[-1][1] if history else None,
            "best_eval_loss": min((loss for _, loss in history), default=None),
            "cumulative_cost_usd": session.spend.cost_usd, "previous_run_ids": session.run_ids[:-1],
            "measured_vs_estimate": _comparison(session)}


def _comparison(session: Session) -> dict[str, Any]:
    if session.check is None:
        return {}
    spend = session.spend
    on_gpu = session.shape is not None and session.shape.device == "cuda"
    return session.check.compare(cost_usd=spend.cost_usd, wall_hours=spend.wall_seconds / 3600.0,
                                 memory_gib=max(0.0, session.rss_peak - session.rss0),
                                 device_hours=spend.gpu_hours if on_gpu else spend.cpu_seconds / 3600.0)


def truecost_callbacks(*, max_usd: float | None = None, max_gpu_hours: float | None = None,
                       max_minutes: float | None = None, max_tokens: int | None = None,
                       ledger: Ledger | None = None, name: str | None = None, kind: str = "train",
                       seq_len: int | None = None, gradient_checkpointing: str = "auto",
                       device_memory_gib: float | None = None, gpu: str | None = None,
                       checkpoint_every_steps: int | None = None, checkpoint_every_minutes: float | None = None,
                       keep_checkpoints: int | None = None, project: Config | None = None,
                       say: Say | None = None) -> list[TrainerCallback]:
    """Pre-flight, budget, metering and checkpoint callbacks sharing one Session, for any Trainer.

    `device_memory_gib` / `gpu` tell the pre-flight what to check against (default: detected); `seq_len` what
    each sequence holds (default: TRL's max_length, else the first example's length).
    """
    session = Session(project=project, say=say, ledger=ledger, seq_len=seq_len)
    return [PreflightCallback(gradient_checkpointing=gradient_checkpointing, device_memory_gib=device_memory_gib,
                              gpu=gpu, session=session),
            BudgetCallback(max_usd=max_usd, max_gpu_hours=max_gpu_hours, max_minutes=max_minutes,
                           max_tokens=max_tokens, session=session),
            MeteringCallback(ledger, kind=kind, name=name, session=session),
            CheckpointCallback(every_steps=checkpoint_every_steps, every_minutes=checkpoint_every_minutes,
                               keep=keep_checkpoints, session=session)]
