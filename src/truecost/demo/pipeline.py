"""`truecost demo`: what poor data preparation really costs, measured end to end on a real model on this machine.

1. real text (the stdlib's docstrings) and a poorly prepared copy with defects at published rates (a defect with
   no published rate is not injected);
2. curate the poor copy with a recipe chosen for documentation; count what was removed and real content lost;
3. fine-tune SmolLM2-135M-Instruct with LoRA on the poor and on the curated data, same token budget, through
   `truecost.train`; held-out loss on clean text after every chunk of training gives the eval curves;
4. defects in generations from held-out prompts (PII, planted strings and their exposure, mojibake, boilerplate);
5. the same `truecost review` on both models (task quality);
6. route between the fine-tuned SmolLM2 and Gemma-3-270M, quality measured per prompt;
7. monitor a stream that drifts to unseen topics;
8. the TCO from the ledger: every step above is a ledger run under the demo run, read by `tco_from_ledger`.
"""

from __future__ import annotations

import gc
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truecost.config import Config
from truecost.demo.corpus import TextDoc, split_by_domain, stdlib_documents, train_heldout_split
from truecost.demo.defects import BOILERPLATE_LINES, make_poor_copy

# Topics held out of training entirely: the monitor's stream drifts into them.
SHIFTED_DOMAINS = frozenset({"tkinter", "turtle", "curses", "xml", "email"})

# The demo's curation recipe, chosen for documentation rather than web pages. Gopher's quality rules and its n-gram
# repetition rules drop terse, symbol-heavy docstrings (14% of real documents in an earlier run), so they are off;
# the line and paragraph repetition rules stay (they catch the junk), and so do PII, language, exact and near dedup.
# The language score threshold is lowered from FineWeb's 0.65: a docstring's identifiers lower it. A site's banner
# recurs in fewer documents than a mixed crawl's, hence the lower boilerplate fraction.
_NGRAM_RULES_OFF = {"max_top_ngram_char_fraction": {2: 1.0, 3: 1.0, 4: 1.0},
                    "max_dup_ngram_char_fraction": {n: 1.0 for n in range(5, 11)}}
DEMO_RECIPE: dict[str, Any] = {"quality": {"rules": ["gopher_repetition"], "gopher": _NGRAM_RULES_OFF},
                               "language": {"min_score": 0.3}, "normalize": {"boilerplate_min_fraction": 0.05}}

ProgressFn = Callable[[str], None]
ARMS = ("poor", "well")


@dataclass(frozen=True)
class Scale:
    """How big the demo runs. `real`: SmolLM2 + Gemma (else tiny random-init models, for the test suite)."""

    real: bool
    clean_docs: int
    heldout_docs: int  # every held-out document is scored at every point of the eval curves
    steps: int  # optimizer steps per arm (the token budget is steps x seq_len x micro_batch)
    chunks: int  # evaluations on clean held-out text along the way (the eval curve)
    seq_len: int
    micro_batch: int
    heldout_chars: int  # each held-out document is scored on its first N characters (same bytes for every model)
    heldout_tokens: int  # ... and at most this many tokens of them
    items: int  # held-out documents used as prompts: generation scan, review and routing (the same documents)
    prompt_tokens: int  # each generation continues a held-out document's last N tokens
    gen_tokens: int
    canaries: int
    canary_candidates: int
    monitor_docs: int
    monitor_window: int
    lr: float = 1e-3
    lora_rank: int = 16

    @property
    def tokens_per_arm(self) -> int:
        """The token budget each arm trains on."""
        return self.steps * self.seq_len * self.micro_batch


SCALES = {
    # Smoke test: tiny random-init models, every step runs, numbers are noise. Used by the test suite.
    "tiny": Scale(real=False, clean_docs=240, heldout_docs=40, steps=4, chunks=2, seq_len=64, micro_batch=4,
                  heldout_chars=160, heldout_tokens=64, items=12, prompt_tokens=32, gen_tokens=8, canaries=3,
                  canary_candidates=7, monitor_docs=24, monitor_window=8),
    # The default: SmolLM2-135M LoRA, 6,144 tokens per arm, 100 held-out items per effect; each held-out text (160
    # characters) fits in 64 tokens, so every model is scored on the very same bytes. Measured 2026-12-06: 610
    # CPU-seconds, 6.1 minutes on 2 otherwise idle cores, 4.2 GiB peak (each run's report records its CPU-seconds
    # per step: `timings`); training with its eval curves is 350 CPU-seconds, scoring the two arms 145.
    "small": Scale(real=True, clean_docs=1000, heldout_docs=100, steps=6, chunks=2, seq_len=128, micro_batch=8,
                   heldout_chars=160, heldout_tokens=64, items=100, prompt_tokens=32, gen_tokens=16, canaries=8,
                   canary_candidates=31, monitor_docs=60, monitor_window=30),
    # Longer and tighter: 4x the token budget, twice the items.
    "medium": Scale(real=True, clean_docs=1400, heldout_docs=200, steps=24, chunks=4, seq_len=128, micro_batch=8,
                    heldout_chars=240, heldout_tokens=96, items=200, prompt_tokens=48, gen_tokens=24, canaries=32,
                    canary_candidates=63, monitor_docs=100, monitor_window=40),
}


def pick_threads(requested: int | None = None) -> int:
    """Torch threads: as asked, else the cores not already busy (a spinning second thread on a loaded machine costs
    CPU-seconds for no progress)."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, round(cores - os.getloadavg()[0])))


@dataclass
class DemoContext:
    """What the steps share: options, folders, the ledger, the run ids, and everything measured so far."""

    out_dir: Path
    scale: Scale
    seed: int
    config: Config
    ledger: Any
    threads: int = 1
    demo_run_id: str | None = None
    arm_run_ids: dict[str, str] = field(default_factory=dict)
    say: ProgressFn = lambda _msg: None
    measured: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    def adopt(self, run_id: str | None, parent_id: str | None, results: dict[str, Any] | None = None) -> None:
        """Put a run another part opened without a parent (review takes none) under the demo's tree, adding
        `results` keys it does not record."""
        if run_id is None or parent_id is None:
            return
        record = self.ledger.get_run(run_id)
        record.parent_id = parent_id
        record.results.update(results or {})
        self.ledger.save_run(record)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as JSON lines (the folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def _docs_rows(docs: list[TextDoc]) -> list[dict[str, Any]]:
    return [{"id": d.id, "text": d.text, "domain": d.domain} for d in docs]


# -- 1. data ---------------------------------------------------------------------------------------------------
def build_corpora(ctx: DemoContext) -> dict[str, Any]:
    """Clean training docs, clean held-out docs, shifted-topic docs, and the poorly prepared training copy."""
    from truecost.demo.defects import rate_sources

    docs = stdlib_documents(min_words=50)  # Gopher's minimum document length
    in_domain, shifted = split_by_domain(docs, set(SHIFTED_DOMAINS))
    random.Random(ctx.seed).shuffle(in_domain)
    in_domain = in_domain[:ctx.scale.clean_docs]
    fraction = ctx.scale.heldout_docs / len(in_domain)
    train_docs, heldout = train_heldout_split(in_domain, fraction, ctx.seed)
    poor = make_poor_copy(train_docs, seed=ctx.seed, canaries=ctx.scale.canaries)
    data_dir = ctx.out_dir / "data"
    paths = {"poor": write_jsonl(data_dir / "poor.jsonl", _docs_rows(poor.docs)),
             "clean_reference": write_jsonl(data_dir / "clean.jsonl", _docs_rows(train_docs))}
    ctx.measured["corpus"] = {
        "source": "Python standard library docstrings (read with ast)",
        "clean_train_docs": len(train_docs), "heldout_docs": len(heldout), "shifted_docs": len(shifted),
        "poor_docs": len(poor.docs), "poor_bytes": sum(len(d.text.encode()) for d in poor.docs),
        "clean_bytes": sum(len(d.text.encode()) for d in train_docs), "defects_injected": poor.counts(),
        "defect_rates": {name: {"value": r.value, "unit": r.unit, "basis": r.basis, "citation": r.citation()}
                         for name, r in rate_sources().items()}}
    return {"train": train_docs, "heldout": heldout, "shifted": shifted, "poor": poor, "paths": paths}


# -- 2. curate -------------------------------------------------------------------------------------------------
def curate_poor_copy(ctx: DemoContext, data: dict[str, Any]) -> Path:
    """Run the demo recipe on the poor copy; measure removals, defects caught and real content lost."""
    from truecost.curate.document import Document
    from truecost.curate.pipeline import run_curate
    from truecost.curate.settings import CurateSettings

    poor = data["poor"]
    out = ctx.out_dir / "curated"
    docs = [Document(d.id, d.text, {"domain": d.domain}) for d in poor.docs]
    with ctx.ledger.run("curate", "demo: curate the poorly prepared copy", parent_id=ctx.demo_run_id,
                        params={"recipe": DEMO_RECIPE}, prices=ctx.config.compute_prices()) as meter:
        run = run_curate([], CurateSettings.model_validate(DEMO_RECIPE), output_dir=out, docs=docs,
                         config=ctx.config)
        totals = run.report(ctx.config).get("totals", {})
        tokens_in = int(totals.get("tokens_in", 0) or 0)
        bytes_in, bytes_out = sum(d.n_bytes for d in docs), sum(d.n_bytes for d in run.result.kept)
        meter.tokens = tokens_in
        meter.results.update({"tokens_removed_fraction": 1.0 - bytes_out / bytes_in if bytes_in else 0.0,
                              "docs_in": len(docs), "docs_out": len(run.result.kept)})
    kept_text = " ".join(d.text for d in run.result.kept)
    ctx.measured["curate"] = {
        "run_id": meter.id, "recipe": DEMO_RECIPE, "docs_in": len(docs), "docs_out": len(run.result.kept),
        "bytes_in": bytes_in, "bytes_out": bytes_out, "cpu_seconds": run.cpu_seconds,
        **defect_outcomes(poor, run.removals, run.result.kept),
        "removed_bytes_by_origin": removed_by_origin(docs, run.result.kept),
        "pii_left": sum(kept_text.count(s) for s in ("@example.com", "+1 415-")),
        "mojibake_left": kept_text.count("â€"), "boilerplate_left": sum(kept_text.count(b) for b in BOILERPLATE_LINES),
        "report": str(out / "report.html")}
    return write_jsonl(ctx.out_dir / "data" / "curated.jsonl",
                       [{"id": doc.id, "text": doc.text} for doc in run.result.kept])


def removed_by_origin(docs: list[Any], kept: list[Any]) -> dict[str, int]:
    """UTF-8 bytes curation removed, by where they came from: injected duplicate copies, injected junk documents,
    and edits or removals of real documents (boilerplate and PII fixes, real near-duplicates); the rates each was
    injected at, and their sources, are in data/defect_rates.csv."""
    kept_bytes = {d.id: d.n_bytes for d in kept}
    out = {"duplicate_copies": 0, "junk_documents": 0, "real_documents": 0}
    for doc in docs:
        origin = "duplicate_copies" if doc.id.endswith("#copy") else "junk_documents" if doc.id.startswith("junk:") \
            else "real_documents"
        out[origin] += max(0, doc.n_bytes - kept_bytes.get(doc.id, 0))
    return out


def defect_outcomes(poor: Any, removals: list[Any], kept: list[Any]) -> dict[str, Any]:
    """Score curation against the injected defects: duplicates left, junk removed, real content lost.

    A clean document and its injected copies form a group; curation is right when exactly one member survives.
    A group with no survivor was lost, unless dedup removed it as a near-duplicate of another real document that
    survived (the stdlib repeats some docstrings): that is redundant content, counted apart.
    """
    kept_ids = {d.id for d in kept}
    groups: dict[str, list[str]] = {}
    for doc_id, source in poor.source_of.items():
        groups.setdefault(source, []).append(doc_id)
    survivors = {source: sum(m in kept_ids for m in members) for source, members in groups.items()}
    reasons = {r.id: (r.reason or {}) for r in removals}
    junk = [i for i, kinds in poor.defects.items() if "junk" in kinds]
    lost, redundant, lost_by_rule = [], [], dict[str, int]()
    for source, n in survivors.items():
        if n:
            continue
        reason = next((reasons[m] for m in groups[source] if m in reasons), {})
        twin = poor.source_of.get(str(reason.get("kept", "")))
        if reason.get("rule") in ("near_duplicate", "exact_duplicate") and twin not in (None, source) \
                and survivors.get(twin, 0):
            redundant.append(source)
            continue
        lost.append(source)
        rule = str(reason.get("rule", "?"))
        lost_by_rule[rule] = lost_by_rule.get(rule, 0) + 1
    with_copies = [source for source, members in groups.items() if len(members) > 1]
    return {
        "duplicate_groups": len(with_copies),
        "copies_injected": sum(len(groups[s]) - 1 for s in with_copies),
        "copies_left": sum(max(0, survivors[s] - 1) for s in with_copies),
        "junk_injected": len(junk), "junk_removed": sum(i not in kept_ids for i in junk),
        "content_docs": len(groups), "content_docs_lost": len(lost), "content_docs_lost_by_rule": lost_by_rule,
        "content_docs_redundant": len(redundant),
        "content_lost_share": len(lost) / len(groups) if groups else 0.0}


# -- 3. models and training ------------------------------------------------------------------------------------
def base_models(ctx: DemoContext, data: dict[str, Any]) -> dict[str, Path]:
    """The base model the arms fine-tune and the larger model routing compares it with (plain HF folders)."""
    from truecost.demo.models import GEMMA3, SMOLLM2, plain_model, tiny_model

    if ctx.scale.real:
        return {"base": plain_model(SMOLLM2, ctx.say), "large": plain_model(GEMMA3, ctx.say)}
    texts = [d.text for d in data["train"]]
    folder = ctx.out_dir / "tiny-models"
    return {"base": tiny_model(folder / "small", texts, 64, 2, ctx.seed),
            "large": tiny_model(folder / "large", texts, 96, 3, ctx.seed)}


def heldout_texts(ctx: DemoContext, docs: list[TextDoc]) -> list[str]:
    """Each held-out document's first characters: every model is scored on the very same bytes."""
    return [d.text[:ctx.scale.heldout_chars] for d in docs]


def train_arms(ctx: DemoContext, data: dict[str, Any], curated: Path, models: dict[str, Path]) -> dict[str, Any]:
    """Both arms, same base model and token budget; the base model's curve point is shared."""
    from truecost.demo.arms import pooled_loss, train_arm
    from truecost.demo.measure import doc_losses
    from truecost.demo.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(models["base"])
    heldout = heldout_texts(ctx, data["heldout"])
    ctx.say("scoring the base model on clean held-out text")
    base = load_model(models["base"])
    base_losses = doc_losses(base, tokenizer, heldout, max_tokens=ctx.scale.heldout_tokens)
    del base
    gc.collect()
    arms = {}
    for arm, source in (("poor", data["paths"]["poor"]), ("well", curated)):
        arms[arm] = train_arm(ctx, arm, source, models["base"], tokenizer, heldout, base_losses)
    ctx.measured["training"] = {arm: r.summary() for arm, r in arms.items()}
    ctx.measured["training"]["base_heldout_loss"] = pooled_loss(base_losses)
    ctx.measured["_arms"] = arms  # the per-item numbers the effects' intervals need; not written out
    return {"arms": arms, "tokenizer": tokenizer, "base_losses": base_losses, "heldout": heldout}


# -- 4-5. defects and review -----------------------------------------------------------------------------------
def measure_effects(ctx: DemoContext, data: dict[str, Any], trained: dict[str, Any]) -> None:
    """Defects in generations, exposure of planted secrets and the review's task quality, for both arms (one base
    model in memory, the arms' adapters switched on it: `trained["bank"]`)."""
    from truecost.demo import scan
    from truecost.demo.effects import defects_in_generations, eval_set, review_arm

    poor_texts = [d.text for d in data["poor"].docs]
    planted = scan.planted_strings(poor_texts)
    canaries = scan.canaries(poor_texts, ctx.scale.canaries)
    eval_path = write_jsonl(ctx.out_dir / "review" / "eval.jsonl",
                            eval_set(data["heldout"], ctx.scale.items, ctx.seed))
    defects, reviews = {}, {}
    for arm in ARMS:
        model = trained["bank"].use(arm)
        defects[arm] = defects_in_generations(ctx, arm, model, trained["tokenizer"], data["heldout"], planted,
                                              canaries)
        reviews[arm] = review_arm(ctx, arm, model, trained["tokenizer"], eval_path)
    ctx.measured["defects"] = {arm: {k: v for k, v in d.items() if k != "flags"} for arm, d in defects.items()}
    ctx.measured["review"] = reviews
    ctx.measured["_flags"] = {arm: d["flags"] for arm, d in defects.items()}


# -- 6. route --------------------------------------------------------------------------------------------------
def route_between_models(ctx: DemoContext, data: dict[str, Any], trained: dict[str, Any],
                         models: dict[str, Path]) -> None:
    """The well-prepared SmolLM2 (cheap; its losses are already measured) against Gemma-3-270M (dearer), on the
    held-out prompts. Gemma's 262k-token vocabulary makes its logits large: it is scored two documents at a time."""
    from truecost.demo.measure import doc_losses
    from truecost.demo.models import load_model, load_tokenizer
    from truecost.demo.routing import route_models

    n = ctx.scale.items
    ctx.say("scoring the larger model (routing) on the same held-out text")
    large = load_model(models["large"])
    large_losses = doc_losses(large, load_tokenizer(models["large"]), trained["heldout"][:n],
                              max_tokens=4 * ctx.scale.heldout_tokens, batch=2)
    del large
    gc.collect()
    prompts = [" ".join(d.text.split()[:40]) for d in data["heldout"][:n]]
    names = {"small": "SmolLM2-135M (well-prepared LoRA)", "large": "Gemma-3-270M"} if ctx.scale.real else \
        {"small": "tiny-small", "large": "tiny-large"}
    result = route_models(ctx, prompts, {names["small"]: trained["arms"]["well"].final[:n],
                                         names["large"]: large_losses[:n]})
    ctx.measured["routing"] = result


# -- 7. monitor ------------------------------------------------------------------------------------------------
def monitor_shift(ctx: DemoContext, data: dict[str, Any], trained: dict[str, Any]) -> None:
    """Reference: in-topic traffic; current: more in-topic traffic, then a shift to topics never trained on."""
    import math

    from truecost.demo.measure import DocLoss, doc_losses
    from truecost.monitor import run_monitor

    shifted = list(data["shifted"])
    random.Random(ctx.seed).shuffle(shifted)
    shifted = shifted[:ctx.scale.monitor_docs]
    well = trained["arms"]["well"]
    ctx.say("scoring the well-prepared model on a stream that drifts to new topics")
    shifted_losses = doc_losses(trained["bank"].use("well"), trained["tokenizer"], heldout_texts(ctx, shifted),
                                max_tokens=ctx.scale.heldout_tokens)
    prices = ctx.config.compute_prices()

    def rows(docs: list[TextDoc], losses: list[DocLoss]) -> list[dict[str, Any]]:
        from truecost.estimate import compute_cost_usd

        return [{"prompt": " ".join(d.text.split()[:40]), "quality": math.exp(-loss.per_token),
                 "latency_ms": loss.cpu_seconds * 1000, "cost_usd": compute_cost_usd(loss.cpu_seconds, 0.0, prices),
                 "model": "well"} for d, loss in zip(docs, losses, strict=True)]

    heldout = rows(data["heldout"], well.final)
    half = len(heldout) // 2
    reference, current_in = heldout[:half], heldout[half:]
    current = current_in + rows(shifted, shifted_losses)
    result = run_monitor(reference, current, window=ctx.scale.monitor_window, config=ctx.config, ledger=ctx.ledger,
                         parent_id=ctx.arm_run_ids.get("well"))
    summary = result.to_dict()
    ctx.measured["monitor"] = {
        "run_id": result.run_id, "reference_rows": len(reference), "current_rows": len(current),
        "shift_starts_at_row": len(current_in), "shift_window": len(current_in) // ctx.scale.monitor_window,
        "window": ctx.scale.monitor_window, "decision": summary.get("decision"), "windows": summary.get("windows")}


# -- the whole demo --------------------------------------------------------------------------------------------
def run_demo(ctx: DemoContext) -> dict[str, Any]:
    """Run every step under per-arm ledger runs, timing each; returns {"measured", "timings"}."""
    from truecost.demo.models import AdapterBank

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        ctx.say(name)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        ctx.timings[name] = {"wall_seconds": time.perf_counter() - wall0, "cpu_seconds": time.process_time() - cpu0}
        # What is measured so far survives a run that fails or is stopped later.
        partial = {k: v for k, v in ctx.measured.items() if not k.startswith("_")}
        (ctx.out_dir / "measured.partial.json").write_text(json.dumps({"measured": partial, "timings": ctx.timings},
                                                                      default=str), encoding="utf-8")
        return out

    data = timed("building the corpus and its poorly prepared copy", build_corpora, ctx)
    curated = timed("curating the poorly prepared copy", curate_poor_copy, ctx, data)
    models = timed("loading the real models (converted once, then cached)", base_models, ctx, data)
    for arm in ARMS:  # an empty run per project: its runs hang below it and inherit its `tco_arm` tag
        with ctx.ledger.run("other", f"demo: the project with {arm} data preparation",
                            parent_id=ctx.demo_run_id, params={"tco_arm": arm}) as arm_run:
            ctx.arm_run_ids[arm] = arm_run.id
    trained = timed("fine-tuning on poor and on curated data", train_arms, ctx, data, curated, models)
    trained["bank"] = AdapterBank(models["base"], {arm: trained["arms"][arm].adapter_dir for arm in ARMS})
    timed("measuring defects and task quality of both models", measure_effects, ctx, data, trained)
    timed("monitoring a stream that drifts to new topics", monitor_shift, ctx, data, trained)
    del trained["bank"]  # the larger routing model comes next: one model in memory at a time
    gc.collect()
    timed("routing between the fine-tuned model and a larger one", route_between_models, ctx, data, trained, models)
    return {"measured": ctx.measured, "timings": ctx.timings}
