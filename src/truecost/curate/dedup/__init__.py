"""De-duplication for curate: exact (normalised-text hash) and near (MinHash LSH + exact verification).

Each kind comes as one call over a sequence of documents, and as a map step plus a driver step for engines
that spread the per-document work (Ray): `exact_key` / `cluster_exact_keys`, `near_signature` /
`cluster_signatures`.
"""

from truecost.curate.dedup.exact import (
    cluster_exact_keys,
    exact_groups,
    exact_key,
    exact_keys,
    exact_keys_of_normalised,
    find_exact_duplicates,
)
from truecost.curate.dedup.near import (
    NearDedupParams,
    NearSignature,
    cluster_signatures,
    find_near_duplicates,
    near_signature,
    near_signatures,
    signatures_of_normalised,
)
from truecost.curate.dedup.result import DedupResult

__all__ = [
    "DedupResult",
    "NearDedupParams",
    "NearSignature",
    "cluster_exact_keys",
    "cluster_signatures",
    "exact_groups",
    "exact_key",
    "exact_keys",
    "exact_keys_of_normalised",
    "find_exact_duplicates",
    "find_near_duplicates",
    "near_signature",
    "near_signatures",
    "signatures_of_normalised",
]
