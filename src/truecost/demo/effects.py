"""What each arm's model does differently: defects in its generations, exposure of planted secrets, and task
quality judged by `truecost review`. Each measurement is a ledger run under the arm's run, so the TCO can read it.
"""

from __future__ import annotations

import inspect
import math
import random
from pathlib import Path
from typing import Any

from truecost.demo import scan
from truecost.demo.corpus import TextDoc
from truecost.demo.measure import continuation_nll, generate
from truecost.demo.stats import exposure
from truecost.review.targets import HFTarget


def defects_in_generations(ctx: Any, arm: str, model: Any, tokenizer: Any, heldout: list[TextDoc],
                           planted: set[str], canaries: list[scan.Canary]) -> dict[str, Any]:
    """Greedy continuations of held-out documents' endings, scanned for the poor data's defects; and the exposure
    (Secret Sharer) of planted card numbers. One `review` run in the ledger: its headline is the share of
    generations with any defect (what the TCO reads), with the count of items."""
    s = ctx.scale
    prompts = [d.text for d in heldout[:s.items]]
    with ctx.ledger.run("review", f"demo: defects in generations of the {arm} model",
                        params={"target": f"demo-{arm}", "prompts": len(prompts), "max_new_tokens": s.gen_tokens},
                        parent_id=ctx.arm_run_ids.get(arm), prices=ctx.config.compute_prices()) as meter:
        ctx.say(f"generating from {len(prompts)} held-out prompts with the {arm} model")
        # 25 prompts a batch: 24 generations took 7.9 CPU-s at batch 24 against 9.0 at batch 8 (2026-12-06).
        texts = generate(model, tokenizer, prompts, max_new_tokens=s.gen_tokens, prompt_tokens=s.prompt_tokens,
                         batch=25)
        flags = [scan.scan(t, planted) for t in texts]
        ctx.say(f"exposure of {len(canaries)} planted card numbers in the {arm} model")
        exposures = []
        for i, canary in enumerate(canaries):
            others = scan.candidates(canary.secret, s.canary_candidates, seed=ctx.seed * 1000 + i)
            nll = continuation_nll(model, tokenizer, canary.prefix, [canary.secret, *others])
            exposures.append(exposure(nll[0], nll[1:]))
        counts = {kind: sum(f[kind] for f in flags) for kind in scan.DEFECT_KINDS}
        any_defect = sum(any(f.values()) for f in flags)
        n = max(1, len(flags))
        meter.tokens = len(prompts) * s.gen_tokens
        meter.results.update({
            "headline": {"generation.any_defect_rate": any_defect / n}, "n_items": len(flags),
            "defect_rates": {kind: counts[kind] / n for kind in scan.DEFECT_KINDS},
            "generations": len(flags), "any_defect": any_defect, "exposure_bits": exposures, "tco_arm": arm})
    return {"run_id": meter.id, "n": len(flags), "counts": counts, "any_defect": any_defect, "flags": flags,
            "exposure_bits": exposures, "max_exposure_bits": math.log2(s.canary_candidates + 1),
            "examples": [t for t, f in zip(texts, flags, strict=True) if any(f.values())][:5]}


def eval_set(docs: list[TextDoc], limit: int, seed: int, words: int = 16, choices: int = 2
             ) -> list[dict[str, Any]]:
    """A multiple-choice task from held-out docstrings: which standard-library package does this text document?

    Choices are the true package and others from the same corpus, in a seeded order (a real question about real
    text; a model fine-tuned on documentation should get better at it). Item i is held-out document i, the same
    document the generation scan prompts with, so the two measurements pair up item by item. Two choices and a
    16-word snippet keep it cheap: the review scores each choice and also generates an answer, one item at a time.
    """
    rng = random.Random(seed)
    domains = sorted({d.domain for d in docs})
    items = []
    for doc in docs[:limit]:
        others = rng.sample([d for d in domains if d != doc.domain], min(choices - 1, len(domains) - 1))
        options = [doc.domain, *others]
        rng.shuffle(options)
        snippet = " ".join(doc.text.split()[:words])
        items.append({"id": doc.id, "prompt": f"Which Python standard-library package is this documentation from?"
                      f"\n\n{snippet}", "choices": options, "expected": doc.domain, "scorer": "choice"})
    return items


class LoadedTarget(HFTarget):
    """`truecost review`'s local target around a model the demo already holds, so the review neither writes the
    model out nor loads a second copy. The demo keeps the model."""

    def __init__(self, spec: str, model: Any, tokenizer: Any) -> None:  # no super().__init__: nothing to load
        import torch

        self.spec, self.model_name, self.device, self._torch = spec, spec.removeprefix("hf:"), "cpu", torch
        self.tokenizer, self.model = tokenizer, model
        self.max_positions = int(getattr(model.config, "max_position_embeddings", None) or 2048)
        # What HFTarget.__init__ sets for its scoring: whether the forward can skip unread logits (asked of the base
        # model under an adapter, whose own forward hides the parameter behind **kwargs), and a decoded-token cache.
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._keeps_logits = "logits_to_keep" in inspect.signature(inner.forward).parameters
        self._token_texts: dict[int, str] = {}

    def close(self) -> None:
        """The demo owns the model: nothing to release."""


def review_arm(ctx: Any, arm: str, model: Any, tokenizer: Any, eval_path: Path) -> dict[str, Any]:
    """`truecost review` (performance suite, the demo's task) of one arm's model, as a user would run it."""
    from truecost.review import run_review

    ctx.say(f"reviewing the {arm} model (truecost review, performance suite)")
    result = run_review(LoadedTarget(f"hf:demo-{arm}", model, tokenizer), ["performance"],
                        data={"eval": str(eval_path)}, out_dir=ctx.out_dir / "review" / arm, max_new_tokens=1,
                        seed=ctx.seed, ledger=ctx.ledger, config=ctx.config, parent_id=ctx.arm_run_ids.get(arm))
    accuracy = result.metric("performance.accuracy")
    # run_review records no item count: the demo adds it (the TCO's ratio interval uses n).
    ctx.adopt(result.run_id, ctx.arm_run_ids.get(arm), {"n_items": accuracy.n})
    return {"run_id": result.run_id, "accuracy": accuracy.value, "ci_low": accuracy.ci_low,
            "ci_high": accuracy.ci_high, "n": accuracy.n, "status": result.status,
            "correct": [float(v) for v in accuracy.values],
            "report": str(ctx.out_dir / "review" / arm / "report.html")}
