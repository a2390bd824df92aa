"""What a training run did, measured: the shape of `train()`'s answer and of `truecost train --json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STOPPED_BY = ("completed", "early_stopping", "budget", "pruned", "interrupted", "non_finite")


@dataclass
class TrainResult:
    """What a run did, measured: losses, throughput, cost, and the estimate made before it.

    Fields are only ever added (the demo and other parts read them); `status` is `completed`, `stopped` or
    `failed` as in the ledger, and costs are cumulative over every session of a resumed run.
    """

    run_id: str | None
    status: str  # completed, stopped or failed (as in the ledger)
    stopped_by: str  # one of STOPPED_BY
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
    checkpoint: str | None  # the newest complete checkpoint folder
    budget_limit: str | None = None  # which budget field stopped the run
    eval_history: list[tuple[int, float]] = field(default_factory=list)
    estimate: dict[str, Any] = field(default_factory=dict)  # the pre-flight estimate (cost_usd, memory_gib...)
    measured_vs_estimate: dict[str, Any] = field(default_factory=dict)  # per figure: estimated, measured, ratio
    task: str = "lm"  # lm, sft or dpo
    strategy: str = "ddp"  # how several processes shared the model: ddp, fsdp or deepspeed
    failure: str | None = None  # why a failed run failed (a non-finite loss)
    previous_run_ids: list[str] = field(default_factory=list)  # ledger runs of earlier sessions of this run
    ranks: list[dict[str, Any]] = field(default_factory=list)  # per process: host, pid, CPU-seconds, memory

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["eval_history"] = [list(pair) for pair in self.eval_history]
        return data
