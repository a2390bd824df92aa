"""`truecost demo`: what poor data preparation really costs, measured end to end on this machine.

1. a corpus of real text (the stdlib's docstrings) and a poorly prepared copy with documented defects;
2. curate the poor copy, and count what was removed (and which injected defects were caught);
3. train the same tiny model on the poor and on the curated data with the same token budget; measure held-out
   loss on the same clean held-out text, time and cost;
4. train a larger model, score both per prompt, fit a router between them and measure the serving saving;
5. monitor a stream that shifts to an unseen topic, and run a short review of the trained model;
6. extrapolate every measured ratio to the target plan in truecost.toml through the estimate module.
Each step is metered in the ledger under one `demo` run.
"""

from __future__ import annotations

import json
import random
import shutil
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

# The demo's curation recipe. C4's and FineWeb's line rules are built for web pages: on documentation they strip
# every code line and list item, so this recipe keeps Gopher's document-level quality and repetition rules. The
# default boilerplate threshold (a line in half the corpus) suits mixed crawls; one site's banner recurs in fewer.
DEMO_RECIPE: dict[str, Any] = {"quality": {"rules": ["gopher_quality", "gopher_repetition"]},
                               "normalize": {"boilerplate_min_fraction": 0.05}}

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Scale:
    """How big the demo runs: SMALL finishes in a few minutes on 2 CPU cores."""

    clean_docs: int
    train_steps: int
    large_train_steps: int
    heldout_fraction: float
    monitor_window: int
    review_limit: int


SCALES = {
    # A smoke-test size: every step runs, numbers are noisy; used by the test suite.
    "tiny": Scale(clean_docs=300, train_steps=12, large_train_steps=16, heldout_fraction=0.3, monitor_window=15,
                  review_limit=3),
    "small": Scale(clean_docs=900, train_steps=80, large_train_steps=160, heldout_fraction=0.3, monitor_window=40,
                   review_limit=8),
    "medium": Scale(clean_docs=1400, train_steps=400, large_train_steps=800, heldout_fraction=0.25,
                    monitor_window=50, review_limit=20),
}

SMALL_ARCH = {"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4}
LARGE_ARCH = {"hidden_size": 160, "intermediate_size": 448, "num_hidden_layers": 3, "num_attention_heads": 5,
              "num_key_value_heads": 5}


@dataclass
class DemoContext:
    """What the steps share: options, folders, the ledger, and everything measured so far."""

    out_dir: Path
    scale: Scale
    seed: int
    config: Config
    ledger: Any
    demo_run_id: str | None = None
    say: ProgressFn = lambda _msg: None
    measured: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _write_jsonl(path: Path, docs: list[TextDoc]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps({"id": doc.id, "text": doc.text, "domain": doc.domain}) + "\n")
    return path


# -- 1. data ---------------------------------------------------------------------------------------------------
def build_corpora(ctx: DemoContext) -> dict[str, Any]:
    """Clean training docs, clean held-out docs, shifted-topic docs, and the poorly prepared training copy."""
    docs = stdlib_documents(min_words=50)  # Gopher's minimum document length
    in_domain, shifted = split_by_domain(docs, set(SHIFTED_DOMAINS))
    rng = random.Random(ctx.seed)
    rng.shuffle(in_domain)
    in_domain = in_domain[:ctx.scale.clean_docs]
    train_docs, heldout = train_heldout_split(in_domain, ctx.scale.heldout_fraction, ctx.seed)
    poor = make_poor_copy(train_docs, seed=ctx.seed)
    data_dir = ctx.out_dir / "data"
    paths = {"poor": _write_jsonl(data_dir / "poor.jsonl", poor.docs),
             "clean_reference": _write_jsonl(data_dir / "clean.jsonl", train_docs)}
    ctx.measured["corpus"] = {
        "source": "Python standard library docstrings (read with ast)",
        "clean_train_docs": len(train_docs), "heldout_docs": len(heldout), "shifted_docs": len(shifted),
        "poor_docs": len(poor.docs), "poor_bytes": sum(len(d.text.encode()) for d in poor.docs),
        "clean_bytes": sum(len(d.text.encode()) for d in train_docs), "defects_injected": poor.counts()}
    return {"train": train_docs, "heldout": heldout, "shifted": shifted, "poor": poor, "paths": paths}


# -- 2. curate -------------------------------------------------------------------------------------------------
def curate_poor_copy(ctx: DemoContext, data: dict[str, Any]) -> Path:
    """Run every curate step on the poor copy; measure removals and how many injected defects were caught."""
    from truecost.curate.document import Document
    from truecost.curate.pipeline import run_curate
    from truecost.curate.settings import CurateSettings

    poor = data["poor"]
    out = ctx.out_dir / "curated"
    docs = [Document(d.id, d.text, {"domain": d.domain}) for d in poor.docs]
    with ctx.ledger.run("curate", "demo: curate the poorly prepared copy", parent_id=ctx.demo_run_id,
                        prices=ctx.config.compute_prices()) as meter:
        settings = CurateSettings.model_validate(DEMO_RECIPE)
        run = run_curate([], settings, output_dir=out, docs=docs, config=ctx.config)
        report = run.report(ctx.config)
        meter.tokens = int(report.get("totals", {}).get("tokens_in", 0) or 0)
        saving = float(report.get("savings", {}).get("usd_saved_per_training_run") or 0.0)
        meter.results["levers"] = [{"name": "curate: fewer training tokens", "saving_usd": saving}]
    kept_text = " ".join(d.text for d in run.result.kept)
    ctx.measured["curate"] = {
        "recipe": DEMO_RECIPE, "docs_in": len(docs), "docs_out": len(run.result.kept),
        "bytes_in": sum(d.n_bytes for d in docs), "bytes_out": sum(d.n_bytes for d in run.result.kept),
        "cpu_seconds": run.cpu_seconds, **defect_outcomes(poor, run.removals, run.result.kept),
        "pii_left": sum(kept_text.count(s) for s in ("@example.com", "+1 415-")),
        "mojibake_left": kept_text.count("â€"), "boilerplate_left": sum(kept_text.count(b) for b in BOILERPLATE_LINES),
        "report": str(out / "report.html")}
    clean_train = ctx.out_dir / "data" / "curated.jsonl"
    with clean_train.open("w", encoding="utf-8") as handle:
        for doc in run.result.kept:
            handle.write(json.dumps({"id": doc.id, "text": doc.text}) + "\n")
    return clean_train


def defect_outcomes(poor: Any, removals: list[Any], kept: list[Any]) -> dict[str, Any]:
    """Score curation against the injected defects: duplicates left, junk removed, real content lost.

    A clean document and its injected copies form a group; curation is right when exactly one member survives
    (which one is the keep rule's choice). A group with no survivor is real content the filters threw away.
    """
    kept_ids = {d.id for d in kept}
    groups: dict[str, list[str]] = {}
    for doc_id, source in poor.source_of.items():
        groups.setdefault(source, []).append(doc_id)
    survivors = {source: sum(m in kept_ids for m in members) for source, members in groups.items()}
    reasons = {r.id: (r.reason or {}).get("rule", r.step) for r in removals}
    junk = [i for i, kinds in poor.defects.items() if "junk" in kinds]
    lost = [source for source, n in survivors.items() if n == 0]
    lost_by_rule: dict[str, int] = {}
    for source in lost:
        rule = reasons.get(source, "?")
        lost_by_rule[rule] = lost_by_rule.get(rule, 0) + 1
    with_copies = [source for source, members in groups.items() if len(members) > 1]
    return {
        "duplicate_groups": len(with_copies),
        "copies_injected": sum(len(groups[s]) - 1 for s in with_copies),
        "copies_left": sum(max(0, survivors[s] - 1) for s in with_copies),
        "junk_injected": len(junk), "junk_removed": sum(i not in kept_ids for i in junk),
        "content_docs": len(groups), "content_docs_lost": len(lost), "content_docs_lost_by_rule": lost_by_rule}


# -- 3. train --------------------------------------------------------------------------------------------------
def shared_tokenizer(ctx: DemoContext, texts: list[str]) -> Path:
    """One tokenizer for every model, so their per-token losses compare directly."""
    from truecost.train.data import train_tokenizer

    path = ctx.out_dir / "tokenizer"
    train_tokenizer(texts, 2048).save_pretrained(str(path))
    return path


def train_model(ctx: DemoContext, name: str, source: Path, tokenizer: Path, arch: dict[str, Any],
                steps: int) -> Any:
    """Train one tiny model with a fixed token budget (same for every run), metered in the ledger."""
    from truecost.train import make_config, train

    config = make_config(name=name, seed=ctx.seed, output_dir=str(ctx.out_dir / "runs" / "{name}"),
                         max_steps=steps, seq_len=128, micro_batch=16, model={"architecture": arch},
                         data={"source": str(source), "max_chars": 5_000_000},
                         tokenizer={"path": str(tokenizer)}, eval={"every_steps": max(steps // 3, 1), "batches": 4},
                         budget={"max_tokens": steps * 128 * 16},
                         # One thread: models this small gain nothing from a second, and on a busy machine the
                         # second OpenMP thread spins, costing CPU-seconds for no progress (see docs/train.md).
                         hardware={"threads": 1})
    return train(config, ledger=ctx.ledger, project=ctx.config, parent_id=ctx.demo_run_id)


def compare_training(ctx: DemoContext, data: dict[str, Any], curated: Path) -> dict[str, Any]:
    """Same model, same token budget: poor vs curated data, judged on the same clean held-out text."""
    from transformers import AutoTokenizer

    from truecost.demo.scoring import heldout_loss, load_model, perplexity

    tokenizer_dir = shared_tokenizer(ctx, [d.text for d in data["train"]])
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    heldout_texts = [d.text for d in data["heldout"]]
    results, models = {}, {}
    for label, source in (("poor", data["paths"]["poor"]), ("clean", curated)):
        ctx.say(f"training the small model on the {label} data")
        result = train_model(ctx, f"demo-{label}", source, tokenizer_dir, SMALL_ARCH, ctx.scale.train_steps)
        model = load_model(Path(result.output_dir) / "model")
        loss = heldout_loss(model, tokenizer, heldout_texts)
        models[label] = model
        results[label] = {"run_id": result.run_id, "heldout_loss": loss, "heldout_perplexity": perplexity(loss),
                          "tokens": result.tokens, "steps": result.steps, "wall_seconds": result.wall_seconds,
                          "cpu_seconds": result.cpu_seconds, "cost_usd": result.cost_usd,
                          "tokens_per_second": result.tokens_per_second, "output_dir": result.output_dir}
    ctx.measured["training"] = results
    return {"tokenizer": tokenizer, "tokenizer_dir": tokenizer_dir, "models": models}


# -- 4. route --------------------------------------------------------------------------------------------------
def score_outcomes(ctx: DemoContext, models: dict[str, Any], tokenizer: Any, docs: list[TextDoc]
                   ) -> list[dict[str, Any]]:
    """Per prompt: each model's quality (mean probability of the reference continuation) and its CPU cost."""
    from truecost.demo.scoring import score_prompts
    from truecost.estimate import compute_cost_usd

    prices = ctx.config.compute_prices()
    texts = [d.text for d in docs]
    scores = {name: score_prompts(model, tokenizer, texts) for name, model in models.items()}
    records = []
    for i, doc in enumerate(docs):
        records.append({"id": doc.id, "prompt": " ".join(doc.text.split()[:40]), "domain": doc.domain, "outcomes": {
            name: {"quality": s[i].quality, "cost": compute_cost_usd(s[i].cpu_seconds, 0.0, prices),
                   "cpu_seconds": s[i].cpu_seconds} for name, s in scores.items()}})
    return records


def route_between_models(ctx: DemoContext, data: dict[str, Any], trained: dict[str, Any], curated: Path
                         ) -> list[dict[str, Any]]:
    """Train a larger model, score both per prompt, fit a kNN router on half, evaluate on the other half."""
    from truecost.demo.scoring import load_model
    from truecost.route import read_outcomes, write_outcomes
    from truecost.route.evaluate import evaluate
    from truecost.route.routers import KNNRouter

    ctx.say("training the larger model (the 'strong' model for routing)")
    large = train_model(ctx, "demo-large", curated, trained["tokenizer_dir"], LARGE_ARCH,
                        ctx.scale.large_train_steps)
    models = {"small": trained["models"]["clean"], "large": load_model(Path(large.output_dir) / "model")}
    ctx.say("scoring both models prompt by prompt")
    records = score_outcomes(ctx, models, trained["tokenizer"], data["heldout"])
    order = list(range(len(records)))
    random.Random(ctx.seed).shuffle(order)
    half = len(order) // 2
    paths = {}
    for part, rows in (("train", order[:half]), ("test", order[half:])):
        paths[part] = ctx.out_dir / "route" / f"{part}.jsonl"
        paths[part].parent.mkdir(parents=True, exist_ok=True)
        write_outcomes(({"id": records[i]["id"], "prompt": records[i]["prompt"],
                         "outcomes": {m: {"quality": o["quality"], "cost": o["cost"]}
                                      for m, o in records[i]["outcomes"].items()}} for i in rows), paths[part])
    with ctx.ledger.run("route", "demo: fit and evaluate a router", parent_id=ctx.demo_run_id,
                        prices=ctx.config.compute_prices()) as meter:
        router = KNNRouter().fit(read_outcomes(paths["train"], ctx.config))
        router.save(ctx.out_dir / "route" / "knn")
        result = evaluate({"knn": router}, read_outcomes(paths["test"], ctx.config), seed=ctx.seed)
        knn = result["routers"]["knn"]
        meter.results.update({"cost_saving_at_best_single_quality": knn.get("cost_saving_at_best_single_quality"),
                              "apgr": knn.get("apgr")})
    ctx.measured["routing"] = {
        "large_training": {"run_id": large.run_id, "cost_usd": large.cost_usd, "wall_seconds": large.wall_seconds},
        "models": result["models"], "n_test_prompts": result["n_queries"],
        "routers": {name: {k: r.get(k) for k in ("apgr", "cpt_50", "cpt_80", "aiq",
                                                  "cost_saving_at_best_single_quality",
                                                  "cost_saving_at_98pct_best_single_quality")}
                    for name, r in result["routers"].items()},
        "frontier_knn": result["routers"]["knn"].get("frontier", []),
        "frontier_random": result["routers"]["random"].get("frontier", [])}
    return records


# -- 5. monitor and review -------------------------------------------------------------------------------------
def monitor_shift(ctx: DemoContext, data: dict[str, Any], trained: dict[str, Any],
                  heldout_records: list[dict[str, Any]]) -> None:
    """Reference: in-topic traffic; current: more in-topic traffic, then a shift to topics never trained on."""
    from truecost.monitor import run_monitor

    shifted_docs = list(data["shifted"])
    random.Random(ctx.seed).shuffle(shifted_docs)
    shifted_records = score_outcomes(ctx, {"small": trained["models"]["clean"]}, trained["tokenizer"],
                                     shifted_docs[:len(heldout_records)])

    def rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in records:
            o = r["outcomes"]["small"]
            out.append({"prompt": r["prompt"], "quality": o["quality"], "latency_ms": o["cpu_seconds"] * 1000,
                        "cost_usd": o["cost"], "model": "small"})
        return out

    half = len(heldout_records) // 2
    reference, current_in = rows(heldout_records[:half]), rows(heldout_records[half:])
    current = current_in + rows(shifted_records)
    result = run_monitor(reference, current, window=ctx.scale.monitor_window, config=ctx.config, ledger=ctx.ledger)
    summary = result.to_dict()
    ctx.measured["monitor"] = {
        "reference_rows": len(reference), "current_rows": len(current), "shift_starts_at_row": len(current_in),
        "shift_window": len(current_in) // ctx.scale.monitor_window, "window": ctx.scale.monitor_window,
        "decision": summary.get("decision"), "windows": summary.get("windows")}


def review_model(ctx: DemoContext, model_dir: Path, tokenizer_dir: Path) -> None:
    """A short performance + security review of the clean-data model, as the review part runs it."""
    from truecost.review import run_review

    target_dir = ctx.out_dir / "review-target"
    shutil.copytree(model_dir, target_dir, dirs_exist_ok=True)
    for item in tokenizer_dir.iterdir():
        shutil.copy2(item, target_dir / item.name)
    result = run_review(f"hf:{target_dir}", ["performance", "security"], out_dir=ctx.out_dir / "review",
                        limit=ctx.scale.review_limit, max_requests=200, max_new_tokens=16, seed=ctx.seed,
                        ledger=ctx.ledger, config=ctx.config)
    data = result.to_dict()
    metrics = [{k: m.get(k) for k in ("name", "value", "ci_low", "ci_high", "n", "description")}
               for m in data.get("metrics", [])]
    ctx.measured["review"] = {"status": data.get("status"), "metrics": metrics,
                              "report": str(ctx.out_dir / "review" / "report.html")}


# -- 6. extrapolate --------------------------------------------------------------------------------------------
def extrapolate(ctx: DemoContext) -> dict[str, Any]:
    """Carry the measured ratios to the target plan (truecost.toml; default a 7B model for a year)."""
    from truecost.estimate.tco import tco

    m = ctx.measured
    curate = m["curate"]
    token_share_removed = 1.0 - curate["bytes_out"] / curate["bytes_in"]
    well_vs_poor = tco(ctx.config, overrides={"poor.duplicate_share": min(token_share_removed, 0.95)})
    routing = m.get("routing", {}).get("routers", {}).get("knn", {})
    saving_share = routing.get("cost_saving_at_best_single_quality")
    serving_usd = well_vs_poor["well"]["serving_usd"]
    routed = None
    if saving_share is not None:
        routed = {"serving_usd_without_routing": serving_usd,
                  "share_saved_measured": saving_share,
                  "serving_usd_with_routing": serving_usd * (1.0 - saving_share),
                  "saving_usd": serving_usd * saving_share}
    poor_t, clean_t = m["training"]["poor"], m["training"]["clean"]
    return {
        "target": well_vs_poor["target"], "model": well_vs_poor["model"], "gpu": well_vs_poor["gpu"],
        "horizon_months": well_vs_poor["horizon_months"],
        "measured_token_share_removed": token_share_removed,
        "tco": {"well": well_vs_poor["well"], "poor": well_vs_poor["poor"],
                "difference_usd": well_vs_poor["difference_usd"], "poor_over_well": well_vs_poor["poor_over_well"]},
        "training_run_p50_usd": well_vs_poor["training_run_p50_usd"],
        "heldout_loss_poor_minus_clean": poor_t["heldout_loss"] - clean_t["heldout_loss"],
        "routing": routed, "assumptions": well_vs_poor["assumptions"]}


# -- the whole demo --------------------------------------------------------------------------------------------
def run_demo(ctx: DemoContext) -> dict[str, Any]:
    """Run every step, timing each; returns {"measured", "extrapolated", "timings"}."""

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        ctx.say(name)
        t0 = time.perf_counter()
        out = fn(*args)
        ctx.timings[name] = time.perf_counter() - t0
        return out

    data = timed("building the corpus and its poorly prepared copy", build_corpora, ctx)
    curated = timed("curating the poorly prepared copy", curate_poor_copy, ctx, data)
    trained = timed("training the same model on poor and on curated data", compare_training, ctx, data, curated)
    records = timed("routing between a small and a larger model", route_between_models, ctx, data, trained, curated)
    timed("monitoring a stream that drifts to new topics", monitor_shift, ctx, data, trained, records)
    clean_dir = Path(ctx.measured["training"]["clean"]["output_dir"])
    timed("reviewing the trained model", review_model, ctx, clean_dir / "model", trained["tokenizer_dir"])
    extrapolated = timed("extrapolating to the target plan", extrapolate, ctx)
    return {"measured": ctx.measured, "extrapolated": extrapolated, "timings": ctx.timings}
