"""Train the same base model on the poor and on the curated data (same token budget) through `truecost.train`, in
chunks, scoring clean held-out text after each chunk: the eval curves that give the compute ratio.

The held-out text is scored here, not by the trainer's own validation split, because that split is drawn from each
arm's own training data (poor text for the poor arm); the curves must be on the same clean text for both arms.
Chunks are `train(..., resume=True)` sessions with a constant learning rate, so chunked training follows the
same trajectory as one run; each session is its own `train` run in the ledger, under the arm's run. The demo
holds one model at a time: the trainer's while it trains, then the chunk's merged model while it is scored.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.demo.measure import DocLoss, doc_losses
from truecost.demo.models import load_model


@dataclass
class ArmResult:
    """One arm: its runs, its eval curve on clean held-out text and its final per-document losses."""

    name: str
    run_ids: list[str] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (optimizer step, nats/token on held-out docs)
    curve_losses: list[list[DocLoss]] = field(default_factory=list)  # per point, each held-out doc (for intervals)
    final: list[DocLoss] = field(default_factory=list)  # every held-out document, after the whole budget
    tokens: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    cost_usd: float = 0.0
    tokens_per_second: float = 0.0
    adapter_dir: str = ""  # the final LoRA adapter (the last chunk's)

    def summary(self) -> dict[str, Any]:
        """JSON-ready, without the per-document numbers."""
        return {"run_ids": self.run_ids, "curve": [list(p) for p in self.curve],
                "heldout_loss": pooled_loss(self.final), "tokens": self.tokens, "cpu_seconds": self.cpu_seconds,
                "wall_seconds": self.wall_seconds, "cost_usd": self.cost_usd,
                "tokens_per_second": self.tokens_per_second, "adapter": self.adapter_dir}


def pooled_loss(losses: list[DocLoss]) -> float:
    """Nats per token over a set of documents (token-weighted)."""
    return sum(d.nll for d in losses) / max(1, sum(d.tokens for d in losses))


def train_config(ctx: Any, arm: str, source: Path, base_dir: Path, max_steps: int) -> Any:
    """The LoRA run of one arm up to `max_steps` (constant LR, so resumed chunks equal one run)."""
    from truecost.train import make_config

    s = ctx.scale
    return make_config(
        name=f"demo-{arm}", seed=ctx.seed, output_dir=str(ctx.out_dir / "runs" / "{name}"), method="lora",
        max_steps=max_steps, seq_len=s.seq_len, micro_batch=s.micro_batch, log_every=10_000,
        model={"path": str(base_dir)}, lora={"rank": s.lora_rank, "alpha": 2 * s.lora_rank},
        data={"source": str(source), "max_chars": 50_000_000},
        optim={"lr": s.lr, "schedule": "constant", "warmup_steps": 0, "weight_decay": 0.0},
        eval={"every_steps": 1_000_000, "batches": 1}, budget={"max_tokens": s.tokens_per_arm},
        hardware={"device": "cpu", "threads": ctx.threads})


def train_arm(ctx: Any, arm: str, source: Path, base_dir: Path, tokenizer: Any, heldout: list[str],
              base_losses: list[DocLoss]) -> ArmResult:
    """Train one arm chunk by chunk; after each chunk, score every held-out doc with that chunk's adapter."""
    from truecost.train import train

    s = ctx.scale
    result = ArmResult(arm, curve=[(0, pooled_loss(base_losses))], curve_losses=[base_losses])
    bounds = [round(s.steps * (k + 1) / s.chunks) for k in range(s.chunks)]
    for k, steps in enumerate(bounds):
        ctx.say(f"training on the {arm} data: steps {bounds[k - 1] if k else 0}-{steps} of {s.steps}")
        run = train(train_config(ctx, arm, source, base_dir, steps), resume=k > 0, ledger=ctx.ledger,
                    project=ctx.config, parent_id=ctx.arm_run_ids.get(arm))
        gc.collect()  # the trainer's own copy of the model is garbage now
        if run.run_id:
            result.run_ids.append(run.run_id)
        result.tokens = run.tokens
        result.cpu_seconds, result.wall_seconds, result.cost_usd = run.cpu_seconds, run.wall_seconds, run.cost_usd
        result.tokens_per_second = run.tokens_per_second
        result.adapter_dir = str(Path(run.output_dir) / "model")
        ctx.say(f"scoring the {arm} model on clean held-out text after {steps} steps")
        model = load_model(base_dir, adapter=result.adapter_dir)
        losses = doc_losses(model, tokenizer, heldout, max_tokens=s.heldout_tokens)
        del model
        gc.collect()
        result.curve.append((steps, pooled_loss(losses)))
        result.curve_losses.append(losses)
        result.final = losses
    return result
