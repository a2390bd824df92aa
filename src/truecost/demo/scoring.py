"""Measure trained models on held-out text: loss per token and per-prompt quality with its CPU cost.

Both demo models share one tokenizer, so their per-token losses are directly comparable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PromptScore:
    """How well a model continued one prompt, and the CPU time that took."""

    quality: float  # mean probability the model gives each token of the reference continuation (teacher-forced)
    cpu_seconds: float
    tokens: int


def load_model(model_dir: str | Path) -> Any:
    """A causal LM saved with save_pretrained, in eval mode on the CPU."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    model.eval()
    return model


def heldout_loss(model: Any, tokenizer: Any, texts: list[str], seq_len: int = 256) -> float:
    """Mean next-token cross-entropy (nats/token) over `texts`, each cut into windows of `seq_len` tokens."""
    import torch

    total_nll, total_tokens = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            for start in range(0, max(len(ids) - 1, 0), seq_len):
                window = ids[start:start + seq_len + 1]
                if len(window) < 2:
                    continue
                batch = torch.tensor([window])
                logits = model(batch[:, :-1]).logits.float()
                nll = torch.nn.functional.cross_entropy(logits[0], batch[0, 1:], reduction="sum")
                total_nll += float(nll)
                total_tokens += len(window) - 1
    return total_nll / max(total_tokens, 1)


def score_prompts(model: Any, tokenizer: Any, texts: list[str], prompt_tokens: int = 48,
                  continuation_tokens: int = 32) -> list[PromptScore]:
    """For each text: the first `prompt_tokens` are the request, the next ones the reference answer."""
    import torch

    scores = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:prompt_tokens + continuation_tokens]
            if len(ids) <= prompt_tokens:
                scores.append(PromptScore(quality=0.0, cpu_seconds=0.0, tokens=len(ids)))
                continue
            cpu0 = time.process_time()
            logits = model(torch.tensor([ids[:-1]])).logits[0, prompt_tokens - 1:].float()
            target = torch.tensor(ids[prompt_tokens:])
            # A graded score in [0, 1]: exact-match accuracy of models this small is mostly zeros, too coarse to
            # tell two models apart prompt by prompt.
            quality = float(torch.softmax(logits, -1).gather(1, target[:, None]).mean())
            scores.append(PromptScore(quality=quality, cpu_seconds=time.process_time() - cpu0, tokens=len(ids)))
    return scores


def perplexity(loss_nats: float) -> float:
    """exp(loss), guarded against overflow for untrained models."""
    return math.exp(min(loss_nats, 50.0))
