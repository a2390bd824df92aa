"""Exact similarity of two word sequences, used to verify MinHash candidates.

`edit_similarity(a, b) = 2·LCS(a, b) / (|a| + |b|)`: the share of words the two documents have in common in the
same order (difflib's ratio, computed exactly). Unlike shingle Jaccard it does not collapse when a short document
has a few scattered word changes: 3 changed words in 60 leave 0.95, where word 5-gram Jaccard falls to ~0.6.
"""

from __future__ import annotations

import numpy as np


def lcs_length(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common subsequence of two word-hash sequences (bit-parallel, exact).

    Hyyrö's bit-vector algorithm: one pass over the longer sequence, each step a few big-integer operations on
    a bitmask as long as the shorter one, so 3,000 × 3,000 words take about a millisecond.
    """
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return 0
    match: dict[int, int] = {}
    for j, word in enumerate(b.tolist()):
        match[word] = match.get(word, 0) | (1 << j)
    mask = (1 << m) - 1
    v = mask
    for word in a.tolist():
        u = v & match.get(word, 0)
        v = ((v + u) | (v - u)) & mask
    return m - v.bit_count()


def edit_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """2·LCS/(|a|+|b|) in [0, 1]; 1.0 for two empty documents."""
    total = len(a) + len(b)
    return 1.0 if total == 0 else 2.0 * lcs_length(a, b) / total


def length_bound(len_a: int, len_b: int) -> float:
    """Upper bound of edit similarity from lengths alone: the LCS is at most the shorter length."""
    total = len_a + len_b
    return 1.0 if total == 0 else 2.0 * min(len_a, len_b) / total


def bag_keys(word_hash: np.ndarray) -> frozenset[int]:
    """Keys for the multiset of words: the i-th copy of a word gets its own key, so set size = word count."""
    if len(word_hash) == 0:
        return frozenset()
    ordered = np.sort(word_hash.astype(np.uint64))
    run_start = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    start_idx = np.maximum.accumulate(np.where(run_start, np.arange(len(ordered)), 0))
    copy_no = (np.arange(len(ordered)) - start_idx).astype(np.uint64)
    # Word hashes are 32-bit, so the copy number can live in the high half without collisions.
    return frozenset((ordered | (copy_no << np.uint64(32))).tolist())


def bag_bound(keys_a: frozenset[int], keys_b: frozenset[int]) -> float:
    """Upper bound of edit similarity from word counts: the LCS uses each shared word at most min(count) times."""
    total = len(keys_a) + len(keys_b)
    if total == 0:
        return 1.0
    small, large = (keys_a, keys_b) if len(keys_a) <= len(keys_b) else (keys_b, keys_a)
    return 2.0 * len(small & large) / total


SKETCH_BUCKETS = 1024


def count_sketch(word_hash: np.ndarray) -> np.ndarray:
    """Words per hash bucket (`SKETCH_BUCKETS` of them): a fixed-size summary of the word multiset."""
    return np.bincount(word_hash & (SKETCH_BUCKETS - 1), minlength=SKETCH_BUCKETS).astype(np.int32)


def sketch_bound(sketch_a: np.ndarray, sketch_b: np.ndarray, len_a: int, len_b: int) -> float:
    """Upper bound of `bag_bound` (so of edit similarity) from two count sketches, in a few microseconds: the
    words two documents share in a bucket are at most the smaller of the bucket's two counts."""
    total = len_a + len_b
    return 1.0 if total == 0 else 2.0 * int(np.minimum(sketch_a, sketch_b).sum()) / total
