"""Did the synthetic data help? Train the same model twice at the same compute — on the scarce real set, and on
the real set plus synthetic examples — through `truecost.train`, then score both on held-out real examples.

The score is the mean negative log-likelihood (nats per token) of each held-out answer given its question, under
the same prompt rendering for both arms; lower is better. The difference (real+synthetic minus real) is paired
by item, with a percentile bootstrap interval. Synthetic data "helped" only when the whole interval is below
zero; an interval across zero is reported as no measurable help, never rounded up to a win.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from truecost.ledger import Ledger

Pair = tuple[str, str]  # (prompt, response)
TEXT_FORMAT = "Question: {prompt}\nAnswer: "


def train_supports_chat() -> bool:
    """True when `truecost train` has chat SFT (`task: sft`, prompt masked); else arms train on plain text."""
    from truecost.train import TrainConfig

    return "task" in TrainConfig.model_fields


def training_rows(pairs: Sequence[Pair], chat: bool) -> list[dict[str, Any]]:
    """Rows `truecost train` reads: chat messages (SFT), or `text` in the plain Question/Answer rendering."""
    if chat:
        return [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]} for p, r in pairs]
    return [{"text": TEXT_FORMAT.format(prompt=p) + r} for p, r in pairs]


@dataclass
class ArmResult:
    """One arm: what it trained on, what training cost, and its held-out scores per item."""

    name: str
    train_examples: int
    synthetic_examples: int
    train: dict[str, Any]  # TrainResult.to_dict(): steps, tokens, cpu_seconds, cost_usd, run_id...
    heldout_nll: list[float] = field(default_factory=list)
    synth_usd: float = 0.0  # generating this arm's synthetic data (the synth run's measured total)

    @property
    def total_usd(self) -> float:
        return float(self.train["cost_usd"]) + self.synth_usd

    def summary(self, seed: int = 0) -> dict[str, Any]:
        from truecost.review.stats import bootstrap_ci

        mean, low, high = bootstrap_ci(self.heldout_nll, seed=seed, n_resamples=2000)
        return {"arm": self.name, "train_examples": self.train_examples,
                "synthetic_examples": self.synthetic_examples, "steps": self.train["steps"],
                "tokens": self.train["tokens"], "cpu_seconds": self.train["cpu_seconds"],
                "train_usd": self.train["cost_usd"], "synth_usd": self.synth_usd, "total_usd": self.total_usd,
                "train_run_id": self.train["run_id"], "heldout_nll": mean, "heldout_nll_low": low,
                "heldout_nll_high": high, "heldout_items": len(self.heldout_nll)}


def train_arm(name: str, rows: list[dict[str, Any]], base: dict[str, Any], work_dir: Path, *,
              ledger: Ledger | None = None, chat: bool = True) -> dict[str, Any]:
    """Train one arm with `truecost.train` on `rows`; `base` holds everything the arms share (model, steps...)."""
    from truecost.train import make_config, train

    data = work_dir / f"{name}.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fields: dict[str, Any] = {**base, "name": name, "output_dir": str(work_dir / name),
                              "data": {**base.get("data", {}), "source": str(data)}}
    if chat:
        fields["task"] = "sft"
    return train(make_config(fields, source=f"arm {name}"), ledger=ledger, kind="train").to_dict()


def load_trained(run_dir: Path, base_model: Path | None) -> tuple[Any, Any]:
    """(model, tokenizer) of a finished arm: a full model, or `base_model` with the arm's LoRA adapter merged."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, tokenizer_dir = run_dir / "model", run_dir / "tokenizer"
    if (model_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        if base_model is None:
            raise ValueError(f"{model_dir} holds a LoRA adapter: pass the base model folder")
        base = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(str(tokenizer_dir))


def _render(tokenizer: Any, prompt: str, response: str, chat: bool) -> tuple[str, str]:
    """(prefix, full text) of one held-out pair, rendered exactly as the arms were trained."""
    if not chat:
        prefix = TEXT_FORMAT.format(prompt=prompt)
        return prefix, prefix + response
    from truecost.train.chat import ensure_chat_template, render

    ensure_chat_template(tokenizer)
    turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return render(tokenizer, turns[:1], add_generation_prompt=True), render(tokenizer, turns)


def answer_nll(model: Any, tokenizer: Any, pairs: Sequence[Pair], *, chat: bool, max_tokens: int = 512
               ) -> list[float]:
    """Per pair: mean negative log-likelihood (nats per token) of the response given the prompt."""
    import torch

    out = []
    with torch.no_grad():
        for prompt, response in pairs:
            prefix, full = _render(tokenizer, prompt, response, chat)
            start = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
            ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_tokens]
            if len(ids) <= start:
                continue
            logits = model(torch.tensor([ids])).logits[0, :-1].float()
            targets = torch.tensor(ids[1:])
            nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")[start - 1:]
            out.append(float(nll.mean()))
    return out


def compare_arms(real: ArmResult, mixed: ArmResult, *, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Paired difference of held-out NLL (mixed minus real; negative means synthetic data helped) and a verdict."""
    from truecost.review.stats import bootstrap_ci

    if len(real.heldout_nll) != len(mixed.heldout_nll):
        raise ValueError("the arms were scored on different held-out items")
    diffs = [b - a for a, b in zip(real.heldout_nll, mixed.heldout_nll, strict=True)]
    point, low, high = bootstrap_ci(diffs, seed=seed, n_resamples=2000, confidence=confidence)
    return {"arms": [real.summary(seed), mixed.summary(seed)], "difference_nll": point, "difference_low": low,
            "difference_high": high, "confidence": confidence, "items": len(diffs),
            "extra_usd": mixed.total_usd - real.total_usd, "verdict": verdict(low, high)}


def verdict(low: float, high: float) -> str:
    """Plain words for an interval of (mixed − real) held-out NLL."""
    if math.isnan(low) or math.isnan(high):
        return "not measured: no held-out items were scored"
    if high < 0:
        return "synthetic data helped: held-out loss is lower with it, and the whole interval is below zero"
    if low > 0:
        return "synthetic data hurt: held-out loss is higher with it, and the whole interval is above zero"
    return "synthetic data did not help measurably: the interval of the difference includes zero"
