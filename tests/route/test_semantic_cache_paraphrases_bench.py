"""The paraphrase bench's scoring (bench/semantic_cache_paraphrases.py) on hand-built pairs and vectors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")
_PATH = Path(__file__).resolve().parents[2] / "bench" / "semantic_cache_paraphrases.py"
_spec = importlib.util.spec_from_file_location("semantic_cache_paraphrases", _PATH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)


def _pairs() -> list:
    return [bench.Pair("p1", "capital of Canada?", "Canada's capital?", True, "factual"),
            bench.Pair("p2", "sort ascending", "sort descending", False, "coding"),
            bench.Pair("p3", "15% of 240", "15 percent of 240", True, "math")]


def test_pairwise_scoring_counts_hits_at_or_above_the_threshold() -> None:
    score = bench.score_pairs(np.array([0.95, 0.97, 0.94]), np.array([True, False, True]), 0.95)
    assert (score.recall.k, score.recall.n) == (1, 2)  # 0.95 counts (>=), 0.94 does not
    assert (score.false_hits.k, score.false_hits.n) == (1, 1)
    assert (score.precision.k, score.precision.n) == (1, 2)
    assert score.recall.low < 0.5 < score.recall.high  # a Wilson interval around 1/2


def test_cache_scoring_through_the_gateways_index() -> None:
    pairs = _pairs()
    a = np.eye(3, dtype=np.float32)  # each a on its own axis
    # b1 next to a1; b2 (a near-miss) next to a2; b3 closest to a1 (another pair's answer), far from a3
    b = np.array([[0.99, 0.141, 0], [0, 0.96, 0.28], [0.9, 0, 0.436]], dtype=np.float32)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    assert bench.cache_matches(a, b, pairs, 0.95, guard=False, words=False) == ["p1", "p2", None]
    assert bench.cache_matches(a, b, pairs, 0.85, guard=False, words=False) == ["p1", "p2", "p1"]
    # b3 writes 15 and 240, a1 no number, so they are in different buckets
    assert bench.cache_matches(a, b, pairs, 0.85, words=False) == ["p1", "p2", None]
    from truecost.minilm import minilm_dir

    if minilm_dir() is not None:  # as the gateway asks: "descending" for "ascending" is refused (MiniLM's words)
        assert bench.cache_matches(a, b, pairs, 0.85) == ["p1", None, None]
    strict = bench.score_cache(bench.cache_matches(a, b, pairs, 0.95, guard=False, words=False), pairs)
    assert (strict.served_correct, strict.served_wrong_paraphrase, strict.missed_paraphrase,
            strict.served_wrong_near_miss, strict.missed_near_miss) == (1, 0, 1, 1, 0)
    loose = bench.score_cache(bench.cache_matches(a, b, pairs, 0.85, guard=False, words=False), pairs)
    assert (loose.served_correct, loose.served_wrong_paraphrase, loose.served_wrong_near_miss) == (1, 1, 1)
    assert (loose.wrong_share.k, loose.wrong_share.n) == (2, 3)


def test_requests_are_embedded_as_the_gateway_sends_them() -> None:
    assert bench.cache_text("hello there") == "user: hello there"
