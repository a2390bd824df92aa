"""Exact dedup: documents whose normalised text (lower-cased words, punctuation and spacing ignored) is equal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from truecost.curate.dedup.result import DedupResult
from truecost.curate.document import normalise_words
from truecost.errors import UserError


class HasWords(Protocol):
    """Anything with an id and its word tokens, such as `truecost.curate.document.Document`."""

    @property
    def id(self) -> str: ...

    @property
    def words(self) -> list[str]: ...


def exact_key(words: Sequence[str]) -> str:
    """128-bit hex hash of the normalised text: the words, lower-cased, joined by single spaces (the map step)."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(normalise_words(list(words)))


def exact_keys(word_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """The 128-bit keys of `exact_key` as an (n, 2) uint64 array (high, low halves), for many documents."""
    return exact_keys_of_normalised([normalise_words(list(words)) for words in word_lists])


def exact_keys_of_normalised(texts: Sequence[bytes]) -> np.ndarray:
    """`exact_keys` of documents given by their normalised words (`Document.normalised_words`)."""
    import xxhash

    digests = b"".join(xxhash.xxh3_128_digest(text) for text in texts)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64).reshape(-1, 2)


def exact_groups(keys: np.ndarray, gids: np.ndarray) -> np.ndarray:
    """(gid, kept gid) of every document whose key another document shares, ascending by gid; the kept one of a
    group is its smallest gid (the first in input order) and maps to itself."""
    if len(gids) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.lexsort((gids, keys[:, 1], keys[:, 0]))
    k, g = keys[order], gids[order]
    new = np.ones(len(g), dtype=bool)
    new[1:] = (k[1:, 0] != k[:-1, 0]) | (k[1:, 1] != k[:-1, 1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.concatenate([starts, [len(g)]]))
    in_group = np.repeat(sizes > 1, sizes)
    kept = np.repeat(g[starts], sizes)
    out = np.stack([g[in_group], kept[in_group]], axis=1)
    return out[np.argsort(out[:, 0], kind="stable")]


def cluster_exact_keys(ids: Sequence[str], keys: Sequence[str]) -> DedupResult:
    """Group ids by key (the driver step). Keep rule: the first document of each group in input order."""
    packed = np.array([[int(k[:16], 16), int(k[16:], 16)] for k in keys], dtype=np.uint64).reshape(-1, 2)
    groups = exact_groups(packed, np.arange(len(ids), dtype=np.int64))
    cluster_of: dict[str, str | None] = dict.fromkeys(ids)
    removed: dict[str, dict[str, Any]] = {}
    for member, kept in groups.tolist():
        cluster_of[ids[member]] = ids[kept]
        if member != kept:
            removed[ids[member]] = {"rule": "exact_duplicate", "kept": ids[kept], "matched": ids[kept],
                                    "similarity": 1.0, "threshold": 1.0}
    stats = {"docs": len(cluster_of), "clusters": int(np.sum(groups[:, 0] == groups[:, 1])),
             "docs_in_clusters": len(groups), "removed": len(removed)}
    return DedupResult(cluster_of=cluster_of, removed={i: removed[i] for i in ids if i in removed}, stats=stats)


def find_exact_duplicates(docs: Sequence[HasWords], **params: Any) -> DedupResult:
    """Exact duplicates after normalisation; the first occurrence of each text is kept. Takes no parameters
    (`params` exists so a recipe's empty `[curate.exact]` table can be passed through)."""
    if params:
        raise UserError(f"exact dedup takes no parameters, got {', '.join(sorted(params))}")
    ids = [d.id for d in docs]
    if len(set(ids)) != len(ids):
        raise UserError("exact dedup needs unique document ids; some ids repeat")
    return cluster_exact_keys([d.id for d in docs], [exact_key(d.words) for d in docs])
