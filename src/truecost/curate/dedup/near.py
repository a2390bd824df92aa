"""Near dedup: MinHash LSH candidates over length-aware word shingles, verified by exact edit similarity.

Split in two so a distributed engine can run it: `near_signature` is a pure per-document map (run it anywhere;
`near_signatures` does a batch at once, with the same result), `cluster_signatures` is the driver-side step
that finds buckets, verifies candidates and applies the keep rule.

How it decides, in order:
1. Documents with an identical word sequence are joined at once (similarity 1.0).
2. Each document is shingled with a word n-gram size that grows with its length (`tiers`): short documents use
   short shingles so a few changed words cannot hide them. A document also joins the neighbouring tier when a
   document of that tier could still reach `threshold` with it, so no qualifying pair is split across tiers.
3. MinHash with `num_bands` x `rows_per_band` permutations; documents sharing any band key are candidates.
4. Each candidate pair is verified exactly: edit similarity `2·LCS/(|a|+|b|)` on lower-cased words must reach
   `threshold`. Pairs already in one cluster are skipped, so a cluster costs about one check per member.
5. Clusters are the connected components of verified pairs.
6. Keep rule: a cluster that contains a document of the on-disk index keeps only that earlier document (the
   previous dataset is already in use), so every new member is removed; otherwise it keeps the document with
   the most words (the most complete version), ties going to the earliest in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from truecost.curate.dedup import hashing, similarity
from truecost.curate.dedup.exact import HasWords
from truecost.curate.dedup.result import DedupResult
from truecost.errors import UserError

if TYPE_CHECKING:
    from truecost.curate.dedup.index import NearIndex

# A vectorised signature batch ends at whichever comes first; words bound its temporary arrays (~50 MB).
_BATCH_DOCS = 1024
_BATCH_WORDS = 1 << 18
_BAG_CACHE_DOCS = 50_000  # word multisets kept for the bound check (a few MB per 1,000 documents of 1,000 words)


@dataclass(frozen=True)
class NearDedupParams:
    """Near-dedup settings. `tiers` lists (min_words, shingle_words), ascending by min_words from 0."""

    threshold: float = 0.75
    num_bands: int = 32
    rows_per_band: int = 3
    tiers: tuple[tuple[int, int], ...] = ((0, 2), (100, 3))
    seed: int = 1
    tries_per_cluster: int = 4  # members of another cluster a document is checked against in one shared bucket

    def __post_init__(self) -> None:
        # Values may come from a TOML/JSON recipe: coerce, and turn any mistake into one clear line.
        try:
            for name in ("num_bands", "rows_per_band", "seed", "tries_per_cluster"):
                value = getattr(self, name)
                if isinstance(value, bool) or int(value) != value:
                    raise ValueError(f"{name} must be an integer, got {value!r}")
                object.__setattr__(self, name, int(value))
            object.__setattr__(self, "threshold", float(self.threshold))
            tiers = tuple((int(lo), int(k)) for lo, k in self.tiers)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad near-dedup parameter: {exc}") from None
        if not 0.0 < self.threshold <= 1.0:
            raise UserError(f"near-dedup threshold must be in (0, 1], got {self.threshold}")
        if self.num_bands < 1 or self.rows_per_band < 1 or self.tries_per_cluster < 1:
            raise UserError("near-dedup num_bands, rows_per_band and tries_per_cluster must be at least 1")
        if not tiers or tiers[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(tiers, tiers[1:], strict=False)):
            raise UserError("near-dedup tiers must start at 0 words and ascend, e.g. [[0, 2], [100, 3]]")
        if any(k < 1 for _, k in tiers):
            raise UserError("near-dedup shingle sizes must be at least 1 word")
        object.__setattr__(self, "tiers", tiers)

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band

    @property
    def length_ratio(self) -> float:
        """Smallest shorter/longer length ratio at which two documents can still reach the threshold."""
        return self.threshold / (2.0 - self.threshold)

    @cached_property
    def _permutations(self) -> tuple[np.ndarray, np.ndarray]:
        return hashing.permutation_params(self.num_perm, self.seed)

    def tiers_for(self, n_words: int) -> list[int]:
        """Indices of the tiers a document of `n_words` joins: every tier holding a length it could match."""
        low, high = n_words * self.length_ratio, n_words / self.length_ratio
        bounds = [lo for lo, _ in self.tiers[1:]] + [float("inf")]
        return [i for i, (lo, _) in enumerate(self.tiers) if low < bounds[i] and high >= lo]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tiers"] = [list(t) for t in self.tiers]
        return out


@dataclass(frozen=True, eq=False)
class NearSignature:
    """What the driver needs of one document: its words as 32-bit hashes (for verification) and its band keys."""

    id: str
    words: np.ndarray  # uint32 per word
    sequence_hash: int
    band_keys: np.ndarray  # uint64, num_bands per joined tier

    @property
    def n_words(self) -> int:
        return len(self.words)


def near_signature(doc_id: str, words: Sequence[str], params: NearDedupParams | None = None) -> NearSignature:
    """The per-document map step: hash the words once, MinHash each tier's shingles, cut into band keys."""
    params = params or NearDedupParams()
    word_hash = hashing.word_hashes(words)
    a, b = params._permutations
    keys = []
    for tier in params.tiers_for(len(word_hash)):
        if len(word_hash) == 0:
            break
        shingles = hashing.shingle_hashes(word_hash, params.tiers[tier][1])
        sig = hashing.minhash(shingles, a, b)
        keys.append(hashing.band_keys(sig, params.num_bands, params.rows_per_band, salt=tier + 1))
    band = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    return NearSignature(
        id=doc_id,
        words=(word_hash >> np.uint64(32)).astype(np.uint32),
        sequence_hash=hashing.sequence_hash(word_hash),
        band_keys=band,
    )


def near_signatures(items: Sequence[tuple[str, Sequence[str]]], params: NearDedupParams | None = None
                    ) -> list[NearSignature]:
    """`near_signature` of many documents at once (the batch map step): the same results, computed with a
    handful of numpy calls per batch instead of per document, which matters for short documents."""
    params = params or NearDedupParams()
    counts = np.array([len(words) for _, words in items], dtype=np.int64)
    all_hashes = hashing.word_hashes([w for _, words in items for w in words])
    if len(all_hashes) != counts.sum():  # a "word" holding a space splits in two: take the exact slow path
        return [near_signature(doc_id, words, params) for doc_id, words in items]
    ends = np.cumsum(counts)
    starts = ends - counts
    a, b = params._permutations
    keys: list[list[np.ndarray]] = [[] for _ in items]
    tiers_of = [params.tiers_for(int(n)) if n > 0 else [] for n in counts]
    for tier, (_, k) in enumerate(params.tiers):
        members = np.array([d for d, tiers in enumerate(tiers_of) if tier in tiers], dtype=np.int64)
        if len(members) == 0:
            continue
        k_eff = np.minimum(counts[members], k)
        lengths = counts[members] - k_eff + 1
        shingles = np.empty(int(lengths.sum()), dtype=np.uint64)
        pos = 0
        short = k_eff < k
        if (~short).any():
            full = members[~short]
            all_shingles = hashing.shingle_hashes(all_hashes, k) if len(all_hashes) >= k else all_hashes[:0]
            # Shingle i starts at word i; a document's own shingles start at its first word.
            full_lengths = lengths[~short]
            index = np.repeat(starts[full] - np.cumsum(full_lengths) + full_lengths, full_lengths)
            index += np.arange(int(full_lengths.sum()))
            picked = all_shingles[index]
        # Documents shorter than k are one shingle of all their words, as in `shingle_hashes`.
        for slot, d in enumerate(members):
            if short[slot]:
                shingles[pos] = hashing.shingle_hashes(all_hashes[starts[d] : ends[d]], k)[0]
                pos += 1
            else:
                n = int(lengths[slot])
                shingles[pos : pos + n] = picked[:n]
                picked = picked[n:]
                pos += n
        sigs = hashing.minhash_many(shingles, lengths, a, b)
        tier_keys = hashing.band_keys(sigs, params.num_bands, params.rows_per_band, salt=tier + 1)
        for slot, d in enumerate(members):
            keys[d].append(tier_keys[slot])
    words32 = (all_hashes >> np.uint64(32)).astype(np.uint32)
    return [
        NearSignature(
            id=doc_id,
            words=words32[starts[d] : ends[d]].copy(),
            sequence_hash=hashing.sequence_hash(all_hashes[starts[d] : ends[d]]),
            band_keys=np.concatenate(keys[d]) if keys[d] else np.zeros(0, dtype=np.uint64),
        )
        for d, (doc_id, _) in enumerate(items)
    ]


class _Components:
    """Union-find with path halving; the root of a merged pair is the smaller index (deterministic)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


def _buckets(band_keys: Sequence[np.ndarray], members: Sequence[int]) -> list[np.ndarray]:
    """Groups of document indices sharing a band key (only groups of two or more), via one sort."""
    sizes = np.array([len(band_keys[i]) for i in members], dtype=np.int64)
    if sizes.sum() == 0:
        return []
    keys = np.concatenate([band_keys[i] for i in members])
    owners = np.repeat(np.asarray(members, dtype=np.int64), sizes)
    order = np.lexsort((owners, keys))
    keys, owners = keys[order], owners[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [len(keys)]])
    multi = ends - starts > 1
    return [owners[s:e] for s, e in zip(starts[multi], ends[multi], strict=True)]


def cluster_signatures(
    signatures: Sequence[NearSignature],
    params: NearDedupParams | None = None,
    *,
    index: NearIndex | None = None,
) -> DedupResult:
    """The driver step: candidates from shared band keys, exact verification, components, keep rule.

    `index` holds documents of earlier datasets: new documents close to them are removed.
    """
    params = params or NearDedupParams()
    indexed: list[NearSignature] = list(index.signatures) if index is not None else []
    indexed_cluster: list[str] = list(index.clusters) if index is not None else []
    n_old = len(indexed)
    sigs = indexed + list(signatures)
    n = len(sigs)
    ids = [s.id for s in signatures]
    if len(set(ids)) != len(ids):
        raise UserError("near dedup needs unique document ids; some ids repeat")

    comp = _Components(n)
    best_edge: dict[int, tuple[float, int]] = {}  # doc -> (similarity, neighbour) of its best verified pair

    def join(x: int, y: int, sim: float) -> None:
        comp.union(x, y)
        for u, v in ((x, y), (y, x)):
            if u >= n_old and (u not in best_edge or sim > best_edge[u][0]):
                best_edge[u] = (sim, v)

    # Earlier datasets' clusters are already known.
    first_in_cluster: dict[str, int] = {}
    for i, cluster in enumerate(indexed_cluster):
        comp.union(first_in_cluster.setdefault(cluster, i), i)

    # 1. identical word sequences
    first_of_seq: dict[tuple[int, int], int] = {}
    lsh_members: list[int] = []
    for i, s in enumerate(sigs):
        key = (s.sequence_hash, s.n_words)
        if key in first_of_seq:
            join(first_of_seq[key], i, 1.0)
        else:
            first_of_seq[key] = i
            lsh_members.append(i)

    # 2-4. candidates and verification
    bag_cache: dict[int, frozenset[int]] = {}
    tried: set[tuple[int, int]] = set()
    counts = {"candidate_pairs": 0, "verified_pairs": 0, "similar_pairs": 0}
    threshold = params.threshold

    def verify(x: int, y: int) -> bool:
        """True when x and y were joined by this check."""
        pair = (x, y) if x < y else (y, x)
        if pair in tried:
            return False
        tried.add(pair)
        counts["candidate_pairs"] += 1
        a, b = sigs[x].words, sigs[y].words
        if similarity.length_bound(len(a), len(b)) < threshold:
            return False
        # The multiset bound costs microseconds and rejects most pairs that overlap only partly.
        if len(bag_cache) > _BAG_CACHE_DOCS:
            bag_cache.clear()  # bounds memory; only speed depends on the cache
        for i in (x, y):
            if i not in bag_cache:
                bag_cache[i] = similarity.bag_keys(sigs[i].words)
        if similarity.bag_bound(bag_cache[x], bag_cache[y]) < threshold:
            return False
        counts["verified_pairs"] += 1
        sim = similarity.edit_similarity(a, b)
        if sim < threshold:
            return False
        counts["similar_pairs"] += 1
        join(x, y, sim)
        return True

    tries = params.tries_per_cluster
    for bucket in _buckets([s.band_keys for s in sigs], lsh_members):
        members = bucket.tolist()
        if members[-1] < n_old:
            continue  # only earlier documents: already clustered when they were indexed
        # Earlier members of this bucket grouped by cluster: a new member is checked against a few members of
        # each other cluster, so a bucket of m near-copies costs O(m) checks, not O(m²).
        seen: dict[int, list[int]] = {}
        for x in members:
            joined = False
            for root, group in seen.items():
                if comp.find(root) == comp.find(x):
                    continue
                for y in group[:tries]:
                    if verify(x, y):
                        joined = True
                        break
            if joined:
                regrouped: dict[int, list[int]] = {}
                for group in seen.values():
                    regrouped.setdefault(comp.find(group[0]), []).extend(group)
                seen = regrouped
            seen.setdefault(comp.find(x), []).append(x)

    # 5-6. components and keep rule
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(comp.find(i), []).append(i)
    cluster_of: dict[str, str | None] = {}
    removed: dict[str, dict[str, Any]] = {}
    cluster_count = docs_in_clusters = 0
    for root_members in groups.values():
        new_members = [i for i in root_members if i >= n_old]
        if not new_members:
            continue
        if len(root_members) == 1:
            cluster_of[sigs[new_members[0]].id] = None
            continue
        cluster_count += 1
        docs_in_clusters += len(new_members)
        if root_members[0] < n_old:
            cluster_id = indexed_cluster[root_members[0]]
            kept_id = cluster_id
            kept = -1
        else:
            kept = min(new_members, key=lambda i: (-sigs[i].n_words, i))
            kept_id = cluster_id = sigs[kept].id
        for i in new_members:
            cluster_of[sigs[i].id] = cluster_id
            if i != kept:
                sim, neighbour = best_edge[i]
                removed[sigs[i].id] = {
                    "rule": "near_duplicate",
                    "kept": kept_id,
                    "matched": sigs[neighbour].id,
                    "similarity": round(sim, 4),
                    "threshold": threshold,
                }
    cluster_of = {doc_id: cluster_of[doc_id] for doc_id in ids}  # input order
    stats = {
        "docs": len(ids),
        "indexed_docs": n_old,
        "clusters": cluster_count,
        "docs_in_clusters": docs_in_clusters,
        "removed": len(removed),
        **counts,
        "params": params.as_dict(),
    }
    return DedupResult(cluster_of=cluster_of, removed=removed, stats=stats)


def find_near_duplicates(
    docs: Sequence[HasWords],
    *,
    index_dir: Path | None = None,
    update_index: bool = True,
    **params: Any,
) -> DedupResult:
    """Near duplicates among `docs` and against the index in `index_dir` (created or extended when given).

    `params` are `NearDedupParams` fields (threshold, num_bands, rows_per_band, tiers, seed).
    """
    from truecost.curate.dedup.index import NearIndex

    try:
        settings = NearDedupParams(**params)
    except TypeError as exc:
        raise UserError(f"unknown near-dedup parameter: {exc}") from None
    signatures: list[NearSignature] = []
    batch: list[tuple[str, Sequence[str]]] = []
    batch_words = 0
    for doc in docs:
        batch.append((doc.id, doc.words))
        batch_words += len(doc.words)
        if len(batch) >= _BATCH_DOCS or batch_words >= _BATCH_WORDS:
            signatures.extend(near_signatures(batch, settings))
            batch, batch_words = [], 0
    signatures.extend(near_signatures(batch, settings))
    index = NearIndex.load(Path(index_dir), settings) if index_dir is not None else None
    result = cluster_signatures(signatures, settings, index=index)
    if index is not None and update_index:
        index.append(signatures, [result.cluster_of[s.id] or s.id for s in signatures])
    return result
