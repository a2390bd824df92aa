"""What a dedup step found: cluster of every input document, and why each removed one went."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DedupResult:
    """Outcome of exact or near dedup over one sequence of documents.

    `cluster_of` has every input id, in input order: the cluster id (the id of the document the cluster keeps,
    or of the previously indexed document it matched) or None for a document with no duplicate.
    `removed` maps each removed id to its reason: rule, kept and matched ids, similarity, threshold.
    """

    cluster_of: dict[str, str | None]
    removed: dict[str, dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def kept_ids(self) -> list[str]:
        """Ids of the documents that stay, in input order."""
        return [doc_id for doc_id in self.cluster_of if doc_id not in self.removed]

    def duplicate_records(self) -> Iterator[dict[str, Any]]:
        """One `{"id", "cluster", "removed"}` record per input document, in input order (duplicates.jsonl)."""
        for doc_id, cluster in self.cluster_of.items():
            yield {"id": doc_id, "cluster": cluster, "removed": doc_id in self.removed}
