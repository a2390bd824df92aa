"""Near-dedup clustering over document numbers: the pure steps that the in-memory call (`near.cluster_signatures`)
and the distributed stages (`truecost.curate.stages`) both run, so their answers are equal document for document.

A document is an int64 number, its `gid`, that orders the corpus: documents of an earlier dataset (the on-disk
index) first, then the input in order. In order:

1. `bucket_pairs`: documents sharing an LSH key are candidates. Each member of a bucket is paired with the first
   `tries` members (by gid), so a bucket of m documents gives at most tries·m pairs, not m²/2. The pairs of a
   bucket depend only on the bucket, so any partitioning of the keys gives the same set.
2. `verify_pairs`: the exact edit similarity of each pair, after two cheap upper bounds; a pair whose ends are
   already connected is skipped (it cannot change the components).
3. `components`: connected components of the verified pairs, each named by its smallest gid.
4. `split_components`: no chaining. A component keeps one document (an indexed one if it has any, else the one
   with the most words, then the earliest) and removes only the members whose own similarity to that document
   reaches the threshold; the others form the next round's cluster, and so on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from truecost.curate.dedup import similarity

_BAG_CACHE_DOCS = 256  # word multisets kept for the bound check (only speed depends on it; ~40 KB each)
_SKETCH_CACHE_DOCS = 4096  # word-count sketches kept (4 KB each)
MAX_SPLIT_ROUNDS = 64  # a component still not covered after this many kept documents leaves the rest unclustered
REPRESENTATIVE_PROBES = 32  # members sampled to choose a cluster's kept document (bound checks per round: 32²)
REPRESENTATIVE_FINALISTS = 6  # best candidates by the bound whose coverage is then counted exactly


class WordSource(Protocol):
    """Where the clustering steps read a document's words (32-bit hashes) and sizes, by gid."""

    def words(self, gid: int) -> np.ndarray: ...

    def n_words(self, gids: np.ndarray) -> np.ndarray: ...

    def sequence_hash(self, gid: int) -> int: ...


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct rows of an (n, 2) int64 array, sorted by first then second column."""
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    new = np.ones(len(pairs), dtype=bool)
    new[1:] = (pairs[1:, 0] != pairs[:-1, 0]) | (pairs[1:, 1] != pairs[:-1, 1])
    return pairs[new]


def bucket_pairs(keys: np.ndarray, gids: np.ndarray, tries: int) -> np.ndarray:
    """Candidate pairs (a < b) from documents that share a key: each member with the bucket's first `tries`."""
    if len(keys) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.lexsort((gids, keys))
    keys, gids = keys[order], gids[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    sizes = np.diff(np.concatenate([starts, [len(keys)]]))
    # Singleton buckets, nearly all of them, give no pair: drop their entries before building anything.
    in_multi = np.repeat(sizes > 1, sizes)
    if not in_multi.any():
        return np.zeros((0, 2), dtype=np.int64)
    member = np.flatnonzero(in_multi)
    bucket_start = np.repeat(starts, sizes)[in_multi]
    rank = member - bucket_start
    out = []
    for t in range(tries):
        later = rank > t
        if not later.any():
            break
        a, b = gids[bucket_start[later] + t], gids[member[later]]
        keep = a != b  # one document twice in a bucket (a 64-bit key collision) is not a pair
        out.append(np.stack([a[keep], b[keep]], axis=1))
    return unique_pairs(np.concatenate(out)) if out else np.zeros((0, 2), dtype=np.int64)


class _UnionFind:
    """Union-find over sparse gids (a dict), path halving; the smaller root wins, so results are deterministic."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        while parent.get(x, x) != x:
            up = parent.get(parent[x], parent[x])
            parent[x] = up
            x = up
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


@dataclass
class VerifyCounts:
    """What verification did: pairs seen, skipped as already connected, checked exactly, found similar."""

    candidate_pairs: int = 0
    connected_skipped: int = 0
    verified_pairs: int = 0
    similar_pairs: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"candidate_pairs": self.candidate_pairs, "connected_skipped": self.connected_skipped,
                "verified_pairs": self.verified_pairs, "similar_pairs": self.similar_pairs}


@dataclass
class Similarity:
    """Exact similarity of two documents by gid, after cheap upper bounds: lengths, then word counts per hash
    bucket, then (for `may_reach`) the word multisets. Per-document bounds data are cached."""

    source: WordSource
    threshold: float
    checks: int = 0  # exact LCS computations
    _bags: OrderedDict[int, frozenset[int]] = field(default_factory=OrderedDict)
    _sketches: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)

    def _bag(self, gid: int) -> frozenset[int]:
        return _cached(self._bags, gid, lambda: similarity.bag_keys(self.source.words(gid)), _BAG_CACHE_DOCS)

    def _sketch(self, gid: int) -> np.ndarray:
        return _cached(self._sketches, gid, lambda: similarity.count_sketch(self.source.words(gid)),
                       _SKETCH_CACHE_DOCS)

    def _sketch_may_reach(self, a: int, b: int, len_a: int, len_b: int) -> bool:
        return similarity.sketch_bound(self._sketch(a), self._sketch(b), len_a, len_b) >= self.threshold

    def may_reach(self, a: int, b: int, len_a: int, len_b: int) -> bool:
        """True unless a cheap upper bound (lengths, word multisets) shows a and b cannot reach the threshold."""
        # The sketch bound is never below the multiset bound, so it only settles pairs the multisets would reject.
        return (similarity.length_bound(len_a, len_b) >= self.threshold
                and self._sketch_may_reach(a, b, len_a, len_b)
                and similarity.bag_bound(self._bag(a), self._bag(b)) >= self.threshold)

    def at_least_threshold(self, a: int, b: int, len_a: int, len_b: int) -> float | None:
        """The similarity of a and b when it reaches the threshold, else None (often without computing it)."""
        if similarity.length_bound(len_a, len_b) < self.threshold:
            return None
        if len_a == len_b and self.source.sequence_hash(a) == self.source.sequence_hash(b):
            return 1.0  # identical word sequences (up to a 2**-64 hash collision)
        # Not the multiset bound as well: past the sketch it rejects about 1 pair in 50 and costs a tenth of an LCS.
        if not self._sketch_may_reach(a, b, len_a, len_b):
            return None
        self.checks += 1
        sim = similarity.edit_similarity(self.source.words(a), self.source.words(b))
        return sim if sim >= self.threshold else None


def _cached(cache: OrderedDict[int, Any], key: int, make: Callable[[], Any], size: int) -> Any:
    """A small LRU cache: the value for `key`, made on a miss."""
    value = cache.get(key)
    if value is None:
        value = cache[key] = make()
        if len(cache) > size:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value


def verify_pairs(pairs: np.ndarray, source: WordSource, threshold: float
                 ) -> tuple[np.ndarray, np.ndarray, VerifyCounts]:
    """The pairs whose exact edit similarity reaches `threshold` (skipping pairs already connected), their
    similarities, and counts."""
    counts = VerifyCounts(candidate_pairs=len(pairs))
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0), counts
    lengths_a, lengths_b = source.n_words(pairs[:, 0]), source.n_words(pairs[:, 1])
    sim = Similarity(source, threshold)
    joined = _UnionFind()
    edges: list[tuple[int, int]] = []
    sims: list[float] = []
    for a, b, len_a, len_b in zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), lengths_a.tolist(),
                                  lengths_b.tolist(), strict=True):
        if joined.find(a) == joined.find(b):
            counts.connected_skipped += 1
            continue
        value = sim.at_least_threshold(a, b, len_a, len_b)
        if value is None:
            continue
        joined.union(a, b)
        edges.append((a, b))
        sims.append(value)
    counts.verified_pairs = sim.checks
    counts.similar_pairs = len(edges)
    return np.array(edges, dtype=np.int64).reshape(-1, 2), np.array(sims), counts


def components(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, roots): every gid in `edges`, ascending, and the smallest gid of its connected component.

    Min-label propagation with pointer jumping, in numpy: each round hooks the larger root of every edge whose
    ends still differ onto the smaller, then shortcuts every label to its root. (scipy's connected_components
    gives the same answer, but importing it costs a quarter of a CPU-second per run.)
    """
    if len(edges) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    nodes, inverse = np.unique(edges.ravel(), return_inverse=True)
    ends = inverse.reshape(-1, 2)
    a, b = ends[:, 0], ends[:, 1]
    label = np.arange(len(nodes))
    while True:
        la, lb = label[a], label[b]
        open_edges = la != lb
        if not open_edges.any():
            break
        # Labels are roots here, so each hook joins two trees; the smaller index wins, so a label never grows.
        np.minimum.at(label, np.maximum(la, lb)[open_edges], np.minimum(la, lb)[open_edges])
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
    # A component's smallest node is its own label (labels only point lower), so every member ends there.
    return nodes, nodes[label]


def iter_groups(nodes: np.ndarray, roots: np.ndarray) -> Iterator[np.ndarray]:
    """The members of each component, ascending, components in order of their root."""
    if len(nodes) == 0:
        return
    order = np.lexsort((nodes, roots))
    nodes, roots = nodes[order], roots[order]
    starts = np.flatnonzero(np.concatenate([[True], roots[1:] != roots[:-1]]))
    ends = np.concatenate([starts[1:], [len(roots)]])
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        yield nodes[s:e]


@dataclass
class SplitResult:
    """New documents that ended in a cluster: the document each duplicates (itself for the kept one) and the
    similarity to it. Arrays are ascending by gid."""

    gid: np.ndarray
    kept: np.ndarray
    similarity: np.ndarray
    counts: dict[str, int]

    @property
    def removed(self) -> np.ndarray:
        """Mask of the removed documents (those kept stand for their own cluster)."""
        return self.gid != self.kept


def _spread(items: list[int], k: int, weight: dict[int, int] | None = None) -> list[int]:
    """At most `k` of `items`, evenly spaced (all of them when there are few): a deterministic sample.

    With `weight` (documents each item stands for), the spacing is over those documents, as if each item were
    repeated: an item standing for at least 1/k of all the documents is always sampled (once).
    """
    if len(items) <= k:
        return items
    if not weight:
        step = len(items) / k
        return [items[int(i * step)] for i in range(k)]
    ends = np.cumsum([weight.get(m, 1) for m in items])
    step = int(ends[-1]) / k
    picked = np.searchsorted(ends, [int(i * step) for i in range(k)], side="right")
    return [items[j] for j in np.unique(picked).tolist()]


class _Component:
    """One component being split: sizes, and similarities already computed (each pair at most once)."""

    def __init__(self, n_words: dict[int, int], sim: Similarity, memo: dict[tuple[int, int], float | None],
                 weight: dict[int, int] | None = None) -> None:
        self.n_words = n_words
        self.sim = sim
        self.memo = memo
        self.weight = weight or {}

    def may_reach(self, a: int, b: int) -> bool:
        return self.sim.may_reach(a, b, self.n_words[a], self.n_words[b])

    def similar(self, a: int, b: int) -> float | None:
        key = (a, b) if a < b else (b, a)
        if key not in self.memo:
            self.memo[key] = self.sim.at_least_threshold(a, b, self.n_words[a], self.n_words[b])
        return self.memo[key]

    def choose_kept(self, remaining: list[int], first_new: int) -> int:
        """The document a cluster keeps: one of the index if any (already in use), else the one that covers the
        most members (on a sample of `REPRESENTATIVE_PROBES`, drawn and counted as if each member's exact copies were
        there; the word-multiset bound picks a few finalists, exact similarity decides), then the most words, then
        the earliest.
        The most complete document is often a poor centre: in a family of licence notices the longest one
        reaches few of the others, a typical one nearly all."""
        pool = [m for m in remaining if m < first_new] or remaining
        if len(pool) == 1:
            return pool[0]
        probes = _spread(remaining, REPRESENTATIVE_PROBES, self.weight)
        candidates = _spread(pool, REPRESENTATIVE_PROBES)
        reachable = {c: [q for q in probes if q != c and self.may_reach(c, q)] for c in candidates}
        in_probes = set(probes)
        # A candidate covers itself when it is one of the probes.
        ranked = sorted((-self._weight(reachable[c] + ([c] if c in in_probes else [])), -self.n_words[c], c)
                        for c in candidates)
        # The bound is loose: among the few best by it, count exactly (pairs computed here are remembered). A
        # finalist's bound is also the best it can score, so finalists that cannot beat the leader are skipped.
        best: tuple[int, int, int] | None = None
        for bound_key in ranked[:REPRESENTATIVE_FINALISTS]:
            if best is not None and bound_key > best:
                break
            key = self._exact_key(bound_key, reachable[bound_key[2]], best)
            if key is not None and (best is None or key < best):
                best = key
        assert best is not None  # the first finalist is always counted in full
        return best[2]

    def _weight(self, members: list[int]) -> int:
        return sum(self.weight.get(m, 1) for m in members)

    def _exact_key(self, bound_key: tuple[int, int, int], reachable: list[int], best: tuple[int, int, int] | None
                   ) -> tuple[int, int, int] | None:
        """(-covered, -words, gid) of a finalist with exact similarities, or None once it cannot beat `best`."""
        covered, words, candidate = -bound_key[0], bound_key[1], bound_key[2]
        for q in reachable:
            if self.similar(candidate, q) is None:
                covered -= self.weight.get(q, 1)
                if best is not None and (-covered, words, candidate) > best:
                    return None
        return -covered, words, candidate


def _split_one(members: list[int], part: _Component, first_new: int, out: list[tuple[int, int, float]],
               counts: dict[str, int]) -> None:
    """Clusters of one component, each verified against its kept document (see the module docstring)."""
    remaining = members
    rounds = 0
    while len(remaining) > 1:
        if rounds == MAX_SPLIT_ROUNDS:
            counts["left_unclustered"] += sum(1 for m in remaining if m >= first_new)
            return
        rounds += 1
        rep = part.choose_kept(remaining, first_new)
        rest, removed = [], []
        for x in remaining:
            if x == rep:
                continue
            value = part.similar(rep, x)
            if value is None:
                rest.append(x)
            elif x >= first_new:
                removed.append((x, value))
        if removed:
            counts["clusters"] += 1
            if rep >= first_new:
                out.append((rep, rep, 1.0))
            out.extend((x, rep, value) for x, value in removed)
        remaining = rest
    counts["split_clusters"] += max(0, rounds - 1)


def split_components(nodes: np.ndarray, roots: np.ndarray, source: WordSource, threshold: float,
                     first_new: int = 0, edges: np.ndarray | None = None, sims: np.ndarray | None = None,
                     weight: dict[int, int] | None = None) -> SplitResult:
    """No chaining: each component becomes clusters whose members all reach `threshold` with the kept one.

    Documents with gid < `first_new` are indexed (an earlier dataset): preferred as the kept document, never
    reported themselves. `edges`/`sims` are pairs already verified (a < b), so they are not computed again.
    `weight`: how many documents a member stands for (itself and the exact copies removed before near dedup), so
    the kept document is chosen as if the copies were there.
    """
    known: dict[tuple[int, int], float] = {}
    if edges is not None and sims is not None and len(edges):
        known = dict(zip(zip(edges[:, 0].tolist(), edges[:, 1].tolist(), strict=True), sims.tolist(), strict=True))
    counts = {"clusters": 0, "split_clusters": 0, "left_unclustered": 0, "representative_checks": 0}
    sim = Similarity(source, threshold)
    n_words = dict(zip(nodes.tolist(), source.n_words(nodes).tolist(), strict=True))
    out: list[tuple[int, int, float]] = []
    memo: dict[tuple[int, int], float | None] = dict(known)  # components are disjoint: one memo serves all
    for group in iter_groups(nodes, roots):
        _split_one(group.tolist(), _Component(n_words, sim, memo, weight), first_new, out, counts)
    counts["representative_checks"] = sim.checks
    out.sort()
    return SplitResult(gid=np.array([o[0] for o in out], dtype=np.int64),
                       kept=np.array([o[1] for o in out], dtype=np.int64),
                       similarity=np.array([o[2] for o in out], dtype=np.float64), counts=counts)
