"""The one contract every curate step follows, and the stats each step keeps about what it did.

A step's `map(docs, stats)` is per-document work on any slice of the corpus; the answer for a document never
depends on which other documents share its slice, so any executor (one process, a pool, Ray) may split the corpus
freely. It returns the documents that remain and records every removal, with its rule, value and threshold, in
`stats`. Whole-corpus work (boilerplate lines, dedup) runs as stages over the shards (`truecost.curate.stages`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from truecost.curate.document import Document

EXAMPLES_PER_RULE = 3
EXAMPLE_CHARS = 200


@dataclass
class Removal:
    """One removed document: which step removed it and why (rule, measured value, threshold...)."""

    id: str
    step: str
    reason: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "reason": self.reason}


@dataclass
class StepStats:
    """What one step did to the documents it saw; mergeable, so slices processed apart add up."""

    step: str
    docs_in: int = 0
    docs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    docs_modified: int = 0
    cpu_seconds: float = 0.0
    removed_by_rule: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)  # what was changed or measured, by kind
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    removals: list[Removal] = field(default_factory=list)  # drained to disk after every batch
    skipped: str | None = None

    def remove(self, doc: Document, rule: str, value: Any, threshold: Any, **extra: Any) -> None:
        """Record that `doc` is removed by `rule` (measured `value` against `threshold`)."""
        self.remove_id(doc.id, rule, value, threshold, snippet=doc.text[:EXAMPLE_CHARS], **extra)

    def remove_id(self, doc_id: str, rule: str, value: Any, threshold: Any, snippet: str | None = None,
                  **extra: Any) -> None:
        """`remove` for a document known by id (its text, if known, only feeds the report's example)."""
        reason = {"rule": rule, "value": _rounded(value), "threshold": threshold, **extra}
        self.removals.append(Removal(doc_id, self.step, reason))
        self.removed_by_rule[rule] += 1
        bucket = self.examples.setdefault(rule, [])
        if len(bucket) < EXAMPLES_PER_RULE:
            bucket.append({"id": doc_id, "snippet": snippet or "", "value": _rounded(value)})

    def add_example(self, rule: str, doc: Document, **extra: Any) -> None:
        """Keep the first few documents per rule (id and a snippet) for the report."""
        bucket = self.examples.setdefault(rule, [])
        if len(bucket) < EXAMPLES_PER_RULE:
            bucket.append({"id": doc.id, "snippet": doc.text[:EXAMPLE_CHARS], **extra})

    def merge(self, other: StepStats) -> None:
        """Add `other` (the same step on another slice) into this one, keeping slice order."""
        for name in ("docs_in", "docs_out", "bytes_in", "bytes_out", "docs_modified", "cpu_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.removed_by_rule.update(other.removed_by_rule)
        self.changes.update(other.changes)
        for rule, items in other.examples.items():
            bucket = self.examples.setdefault(rule, [])
            bucket.extend(items[: max(0, EXAMPLES_PER_RULE - len(bucket))])
        self.removals.extend(other.removals)
        self.skipped = self.skipped or other.skipped

    def to_dict(self) -> dict[str, Any]:
        """The counters as JSON (removals travel separately, to disk), for task results and resume markers."""
        return {"step": self.step, "docs_in": self.docs_in, "docs_out": self.docs_out, "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out, "docs_modified": self.docs_modified, "cpu_seconds": self.cpu_seconds,
                "removed_by_rule": dict(self.removed_by_rule), "changes": dict(self.changes),
                "examples": self.examples, "skipped": self.skipped}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepStats:
        st = cls(data["step"])
        for name in ("docs_in", "docs_out", "bytes_in", "bytes_out", "docs_modified", "cpu_seconds", "skipped"):
            setattr(st, name, data[name])
        st.removed_by_rule.update(data["removed_by_rule"])
        st.changes.update(data["changes"])
        st.examples = {k: list(v) for k, v in data["examples"].items()}
        return st

    def summary(self) -> dict[str, Any]:
        """The report's view of this step (removals themselves go to removed.jsonl)."""
        return {
            "step": self.step, "docs_in": self.docs_in, "docs_out": self.docs_out,
            "docs_removed": self.docs_in - self.docs_out, "docs_modified": self.docs_modified,
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "cpu_seconds": round(self.cpu_seconds, 4),
            "removed_by_rule": dict(sorted(self.removed_by_rule.items())),
            "changes": dict(sorted(self.changes.items())),
            "examples": self.examples, "skipped": self.skipped,
        }


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _bytes(docs: list[Document]) -> int:
    # Bytes only: counting words here would re-split every text a step changed, for no rule's benefit.
    return sum(d.n_bytes for d in docs)


class Step:
    """Base of every per-document step: override `process` (one document) or `map` (a slice)."""

    name: ClassVar[str] = "step"

    def process(self, doc: Document, stats: StepStats) -> bool:
        """Transform `doc` in place; return False after `stats.remove(...)` to drop it."""
        return True

    def map(self, docs: list[Document], stats: StepStats) -> list[Document]:
        """Apply `process` to each document of a slice."""
        return [doc for doc in docs if self.process(doc, stats)]


def run_map(step: Step, docs: list[Document], stats: StepStats) -> list[Document]:
    """Run `step` over a slice, metering its CPU time and the documents and bytes in and out."""
    stats.docs_in += len(docs)
    stats.bytes_in += _bytes(docs)
    cpu0 = time.process_time()
    out = step.map(docs, stats)
    stats.cpu_seconds += time.process_time() - cpu0
    stats.docs_out += len(out)
    stats.bytes_out += _bytes(out)
    return out
