"""What each arm's model does differently: defects in its generations, exposure of planted secrets, and task
quality judged by `truecost review`. Each measurement is a ledger run under the arm's run, so the TCO can read it.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from truecost.demo import scan
from truecost.demo.corpus import TextDoc
from truecost.demo.measure import continuation_nll, generate
from truecost.demo.stats import exposure


def defects_in_generations(ctx: Any, arm: str, model: Any, tokenizer: Any, heldout: list[TextDoc],
                           planted: set[str], canaries: list[scan.Canary]) -> dict[str, Any]:
    """Greedy continuations of held-out documents' endings, scanned for the poor data's defects; and the exposure
    (Secret Sharer) of planted card numbers. One `review` run in the ledger, its headline the defect rates."""
    s = ctx.scale
    prompts = [d.text for d in heldout[:s.gen_prompts]]
    with ctx.ledger.run("review", f"demo: defects in generations of the {arm} model",
                        params={"target": f"demo-{arm}", "prompts": len(prompts), "max_new_tokens": s.gen_tokens},
                        parent_id=ctx.arm_run_ids.get(arm), prices=ctx.config.compute_prices()) as meter:
        ctx.say(f"generating from {len(prompts)} held-out prompts with the {arm} model")
        texts = generate(model, tokenizer, prompts, max_new_tokens=s.gen_tokens, prompt_tokens=s.seq_len // 2)
        flags = [scan.scan(t, planted) for t in texts]
        ctx.say(f"exposure of {len(canaries)} planted card numbers in the {arm} model")
        exposures = []
        for i, canary in enumerate(canaries):
            others = scan.candidates(canary.secret, s.canary_candidates, seed=ctx.seed * 1000 + i)
            nll = continuation_nll(model, tokenizer, canary.prefix, [canary.secret, *others])
            exposures.append(exposure(nll[0], nll[1:]))
        counts = {kind: sum(f[kind] for f in flags) for kind in scan.DEFECT_KINDS}
        any_defect = sum(any(f.values()) for f in flags)
        meter.tokens = len(prompts) * s.gen_tokens
        meter.results.update({
            "headline": {f"generation.{k}_defect_rate": counts[k] / max(1, len(flags)) for k in scan.DEFECT_KINDS},
            "generations": len(flags), "any_defect": any_defect, "exposure_bits": exposures, "tco_arm": arm})
    return {"run_id": meter.id, "n": len(flags), "counts": counts, "any_defect": any_defect, "flags": flags,
            "exposure_bits": exposures, "max_exposure_bits": math.log2(s.canary_candidates + 1),
            "examples": [t for t, f in zip(texts, flags, strict=True) if any(f.values())][:5]}


def eval_set(docs: list[TextDoc], limit: int, seed: int) -> list[dict[str, Any]]:
    """A multiple-choice task from held-out docstrings: which standard-library package does this text document?

    Choices are the true package and three others from the same corpus, in a seeded order (a real question
    about real text; a model fine-tuned on documentation should get better at it).
    """
    rng = random.Random(seed)
    domains = sorted({d.domain for d in docs})
    items = []
    for doc in docs[:limit]:
        others = rng.sample([d for d in domains if d != doc.domain], min(3, len(domains) - 1))
        choices = [doc.domain, *others]
        rng.shuffle(choices)
        snippet = " ".join(doc.text.split()[:40])
        items.append({"id": doc.id, "prompt": f"Which Python standard-library package is this documentation from?"
                      f"\n\n{snippet}", "choices": choices, "expected": doc.domain, "scorer": "choice"})
    return items


def review_arm(ctx: Any, arm: str, model: Any, tokenizer_dir: Path, eval_path: Path) -> dict[str, Any]:
    """`truecost review` (performance suite, the demo's task) of one arm's merged model, as a user would run it."""
    from truecost.review import run_review

    target = ctx.out_dir / "models" / arm
    model.save_pretrained(target)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(target)
    ctx.say(f"reviewing the {arm} model (truecost review, performance suite)")
    result = run_review(f"hf:{target}", ["performance"], data={"eval": str(eval_path)},
                        out_dir=ctx.out_dir / "review" / arm, max_new_tokens=1, seed=ctx.seed, ledger=ctx.ledger,
                        config=ctx.config)
    ctx.adopt(result.run_id, ctx.arm_run_ids.get(arm))
    accuracy = result.metric("performance.accuracy")
    return {"run_id": result.run_id, "accuracy": accuracy.value, "ci_low": accuracy.ci_low,
            "ci_high": accuracy.ci_high, "n": accuracy.n, "status": result.status,
            "correct": [float(v) for v in accuracy.values],
            "report": str(ctx.out_dir / "review" / arm / "report.html")}
