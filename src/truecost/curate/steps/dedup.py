"""exact and near: whole-corpus de-duplication steps; the algorithms live in `truecost.curate.dedup`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from truecost.curate.document import Document
from truecost.curate.steps.base import Step, StepStats


def _dedup_function(name: str) -> Any:
    """The dedup module's function `name`, or None while that module has not landed."""
    try:
        from truecost.curate import dedup
    except ImportError:
        return None
    return getattr(dedup, name, None)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return {}


class _DedupStep(Step):
    has_map: ClassVar[bool] = False
    has_reduce: ClassVar[bool] = True
    function: ClassVar[str] = ""

    def __init__(self, params: dict[str, Any] | None = None, index_dir: Path | None = None) -> None:
        self.params = dict(params or {})
        self.index_dir = index_dir

    def call(self, fn: Any, docs: list[Document]) -> Any:
        return fn(docs, **self.params)

    def reduce(self, docs: list[Document], stats: StepStats) -> list[Document]:
        fn = _dedup_function(self.function)
        if fn is None:
            stats.skipped = f"truecost.curate.dedup.{self.function} is not available"
            return docs
        result = self.call(fn, docs)
        stats.clusters.update(result.cluster_of)
        removed: dict[str, dict[str, Any]] = result.removed
        for key, value in _as_dict(getattr(result, "stats", None)).items():
            if isinstance(value, int) and not isinstance(value, bool):
                stats.changes[key] += value
        kept = []
        for doc in docs:
            reason = removed.get(doc.id)
            if reason is None:
                kept.append(doc)
                continue
            reason = dict(reason)
            rule = str(reason.pop("rule", self.name))
            stats.remove(doc, rule, reason.pop("similarity", reason.pop("value", None)),
                         reason.pop("threshold", None), **reason)
        return kept


class ExactDedupStep(_DedupStep):
    """Removes documents whose normalised text is identical to a kept one."""

    name: ClassVar[str] = "exact"
    function: ClassVar[str] = "find_exact_duplicates"


class NearDedupStep(_DedupStep):
    """Removes near-duplicates (MinHash LSH + exact verification), optionally against an index on disk."""

    name: ClassVar[str] = "near"
    function: ClassVar[str] = "find_near_duplicates"

    def call(self, fn: Any, docs: list[Document]) -> Any:
        return fn(docs, index_dir=self.index_dir, **self.params)
