"""Near dedup: MinHash LSH candidates over length-aware word shingles, verified by exact edit similarity.

Split in two so a distributed engine can run it: `near_signature` is a pure per-document map (run it anywhere;
`near_signatures` does a batch at once, with the same result), `cluster_signatures` is the step over all
signatures (in memory here; `truecost.curate.stages` runs the same steps partitioned across a cluster).

How it decides, in order:
1. Each document is shingled with a word n-gram size that grows with its length (`tiers`): short documents use
   short shingles so a few changed words cannot hide them. A document also joins the neighbouring tier when a
   document of that tier could still reach `threshold` with it, so no qualifying pair is split across tiers.
2. MinHash with `num_bands` x `rows_per_band` permutations; documents sharing any band key (or an identical word
   sequence) are candidates, each paired with the first `tries_per_cluster` members of a shared bucket.
3. Each candidate pair is verified exactly: edit similarity `2·LCS/(|a|+|b|)` on lower-cased words must reach
   `threshold`. Pairs already connected are skipped, so a family of copies costs about one check per member.
4. Candidate clusters are the connected components of verified pairs.
5. No chaining: a component keeps one document and removes only members whose own similarity to it reaches
   `threshold`; the others form further clusters, each with its own kept document. The kept document is one of
   the on-disk index if the component has any (the previous dataset is already in use), else the document with
   the most words (the most complete version), ties going to the earliest in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from truecost.curate.dedup import clusters, hashing
from truecost.curate.dedup.exact import HasWords
from truecost.curate.dedup.result import DedupResult
from truecost.curate.document import normalise_words
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

    threshold: float = 0.70
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
    return signatures_of_normalised([doc_id for doc_id, _ in items],
                                    [normalise_words(list(words)) for _, words in items], params)


def signatures_of_normalised(ids: Sequence[str], texts: Sequence[bytes], params: NearDedupParams | None = None
                             ) -> list[NearSignature]:
    """`near_signatures` of documents given by their normalised words (`Document.normalised_words`: lower-cased
    words joined by single spaces, UTF-8), as the pipeline has them. Exact copies are hashed once."""
    params = params or NearDedupParams()
    first: dict[bytes, int] = {}
    unique_of = [first.setdefault(text, len(first)) for text in texts]
    unique = list(first)
    counts = np.array([text.count(b" ") + 1 if text else 0 for text in unique], dtype=np.int64)
    all_hashes = hashing.hash_word_bytes(b" ".join(text for text in unique if text))
    ends = np.cumsum(counts)
    starts = ends - counts
    keys = _tier_band_keys(all_hashes, counts, starts, params)
    words32 = (all_hashes >> np.uint64(32)).astype(np.uint32)
    signatures = [
        (words32[starts[d] : ends[d]].copy(), hashing.sequence_hash(all_hashes[starts[d] : ends[d]]),
         np.concatenate(keys[d]) if keys[d] else np.zeros(0, dtype=np.uint64))
        for d in range(len(unique))
    ]
    return [NearSignature(doc_id, *signatures[u]) for doc_id, u in zip(ids, unique_of, strict=True)]


def _tier_band_keys(all_hashes: np.ndarray, counts: np.ndarray, starts: np.ndarray, params: NearDedupParams
                    ) -> list[list[np.ndarray]]:
    """Band keys of each document (its words are `all_hashes[start:start+count]`), one array per tier it joins."""
    a, b = params._permutations
    keys: list[list[np.ndarray]] = [[] for _ in counts]
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
                shingles[pos] = hashing.shingle_hashes(all_hashes[starts[d] : starts[d] + counts[d]], k)[0]
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
    return keys


def sequence_key(sequence_hash: int, n_words: int) -> int:
    """An LSH key shared exactly by documents with the same word sequence (salt 0: no band uses it)."""
    value = np.array([(sequence_hash ^ (n_words * 0x9E3779B97F4A7C15)) & ((1 << 64) - 1)], dtype=np.uint64)
    return int(hashing.mix64(value)[0])


def lsh_keys(signature: NearSignature) -> np.ndarray:
    """Every key a document is bucketed under: its band keys and its sequence key (none for an empty one)."""
    if signature.n_words == 0:
        return np.zeros(0, dtype=np.uint64)
    seq = np.array([sequence_key(signature.sequence_hash, signature.n_words)], dtype=np.uint64)
    return np.concatenate([signature.band_keys, seq])


class SignatureWords:
    """`clusters.WordSource` over signatures held in memory (gid = position in the list)."""

    def __init__(self, signatures: Sequence[NearSignature]) -> None:
        self.signatures = signatures
        self.sizes = np.array([s.n_words for s in signatures], dtype=np.int64)

    def words(self, gid: int) -> np.ndarray:
        return self.signatures[gid].words

    def n_words(self, gids: np.ndarray) -> np.ndarray:
        return self.sizes[gids]

    def sequence_hash(self, gid: int) -> int:
        return self.signatures[gid].sequence_hash


def _lsh_entries(signatures: Sequence[NearSignature]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, gids): every LSH key of every document, with the document's position."""
    keys = [lsh_keys(s) for s in signatures]
    sizes = np.array([len(k) for k in keys], dtype=np.int64)
    flat = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    return flat, np.repeat(np.arange(len(signatures), dtype=np.int64), sizes)


def _result(signatures: Sequence[NearSignature], all_sigs: Sequence[NearSignature], n_old: int,
            old_clusters: Sequence[str], split: clusters.SplitResult, threshold: float) -> DedupResult:
    """Cluster of every new document (input order) and the reason of each removal."""
    def cluster_name(kept: int) -> str:
        return old_clusters[kept] if kept < n_old else all_sigs[kept].id

    cluster_of: dict[str, str | None] = {s.id: None for s in signatures}
    removed: dict[str, dict[str, Any]] = {}
    for gid, kept, sim in zip(split.gid.tolist(), split.kept.tolist(), split.similarity.tolist(), strict=True):
        doc_id = all_sigs[gid].id
        cluster_of[doc_id] = cluster_name(kept)
        if gid != kept:
            kept_id = all_sigs[kept].id
            removed[doc_id] = {"rule": "near_duplicate", "kept": kept_id, "matched": kept_id,
                               "similarity": recorded_similarity(sim, threshold), "threshold": threshold}
    return DedupResult(cluster_of=cluster_of, removed={i: removed[i] for i in cluster_of if i in removed})


def recorded_similarity(value: float, threshold: float) -> float:
    """`value` rounded to 4 places for the outputs, unless rounding would take it below the threshold."""
    rounded = round(value, 4)
    return rounded if rounded >= threshold else value


def cluster_signatures(
    signatures: Sequence[NearSignature],
    params: NearDedupParams | None = None,
    *,
    index: NearIndex | None = None,
) -> DedupResult:
    """The driver step, in memory: candidates from shared keys, exact verification, components, then the
    no-chaining split against each cluster's kept document (`truecost.curate.dedup.clusters`).

    `index` holds documents of earlier datasets: new documents close to them are removed.
    """
    params = params or NearDedupParams()
    ids = [s.id for s in signatures]
    if len(set(ids)) != len(ids):
        raise UserError("near dedup needs unique document ids; some ids repeat")
    old = list(index.signatures) if index is not None else []
    all_sigs = old + list(signatures)
    source = SignatureWords(all_sigs)
    keys, gids = _lsh_entries(all_sigs)
    pairs = clusters.bucket_pairs(keys, gids, params.tries_per_cluster)
    pairs = pairs[pairs[:, 1] >= len(old)]  # two indexed documents were settled when they were indexed
    edges, sims, counts = clusters.verify_pairs(pairs, source, params.threshold)
    nodes, roots = clusters.components(edges)
    split = clusters.split_components(nodes, roots, source, params.threshold, first_new=len(old), edges=edges,
                                      sims=sims)
    result = _result(signatures, all_sigs, len(old), list(index.clusters) if index is not None else [], split,
                     params.threshold)
    result.stats = {"docs": len(ids), "indexed_docs": len(old), "docs_in_clusters": len(split.gid),
                    "removed": len(result.removed), **split.counts, **counts.as_dict(), "params": params.as_dict()}
    return result


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
