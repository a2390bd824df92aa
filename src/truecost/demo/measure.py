"""Measure a model on held-out text, batched on the CPU: loss per document, greedy generations, and the
log-likelihood of a continuation (for the exposure test). Every function returns plain numbers per item, so the
statistics (intervals over items) stay pure and separate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DocLoss:
    """One document's summed next-token loss, its size in tokens and UTF-8 bytes, and the CPU time it took."""

    nll: float  # nats, summed over predicted tokens
    tokens: int  # predicted tokens
    n_bytes: int  # UTF-8 bytes of the text scored (for comparing models with different tokenizers)
    cpu_seconds: float

    @property
    def per_token(self) -> float:
        """Mean loss in nats per token."""
        return self.nll / max(self.tokens, 1)

    @property
    def per_byte(self) -> float:
        """Mean loss in nats per UTF-8 byte (tokenizer-independent)."""
        return self.nll / max(self.n_bytes, 1)


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def doc_losses(model: Any, tokenizer: Any, texts: Sequence[str], max_tokens: int = 64, batch: int = 8
               ) -> list[DocLoss]:
    """Loss of each text's first `max_tokens` tokens (after a BOS where the tokenizer has one), in padded batches."""
    import torch

    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    encoded = [bos + tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    out: list[DocLoss] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for chunk in _batches(encoded, batch):
            cpu0 = time.process_time()
            width = max(len(ids) for ids in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, seq in enumerate(chunk):
                ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = ids[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            nll = (nll * mask[:, 1:]).sum(1)
            cpu = (time.process_time() - cpu0) / len(chunk)
            for row, seq in enumerate(chunk):
                text = tokenizer.decode(seq[len(bos):], skip_special_tokens=True)
                out.append(DocLoss(float(nll[row]), len(seq) - 1, len(text.encode("utf-8")), cpu))
    return out


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 24, batch: int = 8,
             prompt_tokens: int = 64) -> list[str]:
    """Greedy continuations of each prompt's last `prompt_tokens` tokens (left-padded batches; stops at EOS)."""
    import torch

    tokenizer.padding_side = "left"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    texts: list[str] = []
    with torch.inference_mode():
        for chunk in _batches(list(prompts), batch):
            seqs = [tokenizer(p, add_special_tokens=False)["input_ids"][-prompt_tokens:] for p in chunk]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for row, seq in enumerate(seqs):
                ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                       do_sample=False, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
            texts.extend(tokenizer.decode(row[width:], skip_special_tokens=True) for row in generated)
    return texts


def continuation_nll(model: Any, tokenizer: Any, prefix: str, continuations: Sequence[str], batch: int = 64
                     ) -> list[float]:
    """Summed loss (nats) of each continuation after the same `prefix`.

    The prefix is run once and its key/value cache shared by every continuation (the exposure test ranks a canary
    among dozens of candidates after one long prefix: this is most of its cost otherwise). An empty continuation
    costs 0 nats; the prefix must not be empty (the cache is built from it).
    """
    import copy

    import torch

    head = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    out: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if not head:
        raise ValueError("continuation_nll needs a prefix of at least one token")
    with torch.inference_mode():
        shared = model(input_ids=torch.tensor([head]), use_cache=True)
        first = torch.log_softmax(shared.logits[0, -1].float(), -1)  # the distribution of each first token
        for chunk in _batches(list(continuations), batch):
            tails = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in chunk]
            width = max(len(t) for t in tails)
            if width == 0:
                out.extend(0.0 for _ in tails)
                continue
            ids = torch.full((len(tails), width), pad, dtype=torch.long)
            mask = torch.zeros((len(tails), len(head) + width), dtype=torch.long)
            mask[:, :len(head)] = 1
            for row, tail in enumerate(tails):
                ids[row, :len(tail)] = torch.tensor(tail)
                mask[row, len(head):len(head) + len(tail)] = 1
            cache = copy.deepcopy(shared.cache)  # a forward pass appends to the cache it is given
            cache.batch_repeat_interleave(len(tails))
            logits = model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True).logits
            logp = torch.log_softmax(logits[:, :-1].float(), -1)
            for row, tail in enumerate(tails):
                if not tail:
                    out.append(0.0)
                    continue
                rest = logp[row, torch.arange(len(tail) - 1), torch.tensor(tail[1:], dtype=torch.long)]
                out.append(-float(first[tail[0]] + rest.sum()))
    return out
