"""Exact dedup: documents whose normalised text (lower-cased words, punctuation and spacing ignored) is equal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from truecost.curate.dedup.result import DedupResult
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

    return xxhash.xxh3_128_hexdigest(" ".join(words).lower().encode("utf-8", "surrogatepass"))


def cluster_exact_keys(ids: Sequence[str], keys: Sequence[str]) -> DedupResult:
    """Group ids by key (the driver step). Keep rule: the first document of each group in input order."""
    first_of: dict[str, str] = {}
    size_of: dict[str, int] = {}
    for doc_id, key in zip(ids, keys, strict=True):
        first_of.setdefault(key, doc_id)
        size_of[key] = size_of.get(key, 0) + 1
    cluster_of: dict[str, str | None] = {}
    removed: dict[str, dict[str, Any]] = {}
    for doc_id, key in zip(ids, keys, strict=True):
        kept = first_of[key]
        cluster_of[doc_id] = kept if size_of[key] > 1 else None
        if doc_id != kept:
            removed[doc_id] = {"rule": "exact_duplicate", "kept": kept, "matched": kept, "similarity": 1.0,
                               "threshold": 1.0}
    stats = {
        "docs": len(cluster_of),
        "clusters": sum(1 for n in size_of.values() if n > 1),
        "docs_in_clusters": sum(n for n in size_of.values() if n > 1),
        "removed": len(removed),
    }
    return DedupResult(cluster_of=cluster_of, removed=removed, stats=stats)


def find_exact_duplicates(docs: Sequence[HasWords], **params: Any) -> DedupResult:
    """Exact duplicates after normalisation; the first occurrence of each text is kept. Takes no parameters
    (`params` exists so a recipe's empty `[curate.exact]` table can be passed through)."""
    if params:
        raise UserError(f"exact dedup takes no parameters, got {', '.join(sorted(params))}")
    ids = [d.id for d in docs]
    if len(set(ids)) != len(ids):
        raise UserError("exact dedup needs unique document ids; some ids repeat")
    return cluster_exact_keys([d.id for d in docs], [exact_key(d.words) for d in docs])
